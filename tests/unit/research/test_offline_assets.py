"""CDN URLs of Panel and Bokeh files in a page become data: URLs of the installed files."""

from __future__ import annotations

import base64
import re

import bokeh
from panel.io.resources import CDN_DIST, DIST_DIR

from tradelab.offline_assets import inline_cdn_assets


def _decoded(url: str) -> bytes:
    assert url.startswith("data:"), url
    return base64.b64decode(url.split(",", 1)[1])


def test_panel_and_bokeh_cdn_urls_become_the_installed_files() -> None:
    page = (f'{{"url":"{CDN_DIST}css/listpanel.css"}} '
            f'"{CDN_DIST}bundled/reactiveesm/es-module-shims@%5E1.10.0/dist/es-module-shims.min.js" '
            f'"https://cdn.bokeh.org/bokeh/release/bokeh-widgets-{bokeh.__version__}.min.js"')
    out = inline_cdn_assets(page)
    assert "https://" not in out
    urls = re.findall(r'"(data:[^"]+)"', out)
    assert _decoded(urls[0]) == (DIST_DIR / "css" / "listpanel.css").read_bytes()
    assert len(_decoded(urls[1])) > 1000
    assert b"Bokeh" in _decoded(urls[2])


def test_css_relative_urls_are_embedded_too() -> None:
    out = inline_cdn_assets(f'"{CDN_DIST}css/loading.css?v=1"')
    css = _decoded(out.strip('"')).decode()
    assert "../assets/" not in css and "data:image/svg+xml;base64," in css


def test_unknown_versions_files_and_escapes_are_left_alone() -> None:
    page = ('"https://cdn.bokeh.org/bokeh/release/bokeh-0.0.1.min.js" '
            f'"{CDN_DIST}css/no-such-file.css" "{CDN_DIST}../../etc/passwd"')
    assert inline_cdn_assets(page) == page
