"""Pages that work offline: CDN asset URLs in saved HTML replaced by the installed files.

Shared by the research report and the job runner's notebook exports (a neutral
module, so that jobs need not import research to use it).
"""

from __future__ import annotations

import base64
import mimetypes
import re
from pathlib import Path
from urllib.parse import unquote


def inline_cdn_assets(page: str) -> str:
    """Replace Panel's and Bokeh's CDN URLs in HTML ``page`` with ``data:`` URLs of the installed files.

    Panel's inline-stylesheet pass misses HoloViews plots (in a notebook, where
    HoloViews renders them itself, and nested in a saved page), so even with
    inline resources the page names Panel's layout and theme CSS on Panel's
    CDN (``ImportedStyleSheet`` models in the embedded document); a notebook
    that loaded its plotting extension without ``inline`` names Bokeh's and
    Panel's JS there too. The same files ship with the installed packages; a
    ``data:`` URL keeps the document's JSON valid (base64 needs no escaping).
    URLs of another version, or of files not installed, are left alone (the
    browser test reports them).
    """
    import bokeh
    from bokeh.util.paths import bokehjs_path
    from panel.io.resources import CDN_DIST, DIST_DIR

    def panel_file(match: re.Match[str]) -> str:
        # Bundled packages keep their npm spec in the path (``tabulator-tables@6.4.0``,
        # ``es-module-shims@^1.10.0``, sometimes quoted as ``%5E``): the folder is not quoted.
        path = Path(DIST_DIR) / unquote(match.group(1))
        if ".." in Path(match.group(1)).parts or not path.is_file():
            return match.group(0)
        return _data_url(path)

    def bokeh_file(match: re.Match[str]) -> str:
        component, minified, ext = match.groups()
        path = Path(bokehjs_path()) / ext / f"bokeh{component or ''}{minified or ''}.{ext}"
        return _data_url(path) if path.is_file() else match.group(0)

    page = re.sub(re.escape(CDN_DIST) + r"([A-Za-z0-9_./@%^+~-]+)(?:\?v=[A-Za-z0-9_.-]*)?", panel_file, page)
    bokeh_cdn = (r"https://cdn\.bokeh\.org/bokeh/(?:release|dev)/bokeh(-[a-z]+)?-"
                 + re.escape(bokeh.__version__) + r"(\.min)?\.(js|css)")
    return re.sub(bokeh_cdn, bokeh_file, page)


def _data_url(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    data = path.read_bytes()
    if mime == "text/css":
        # Relative url(...) in the CSS (spinners, icons) would resolve against the data:
        # URL and fail: embed the files it names as well.
        def nested(m: re.Match[str]) -> str:
            target = (path.parent / m.group(2)).resolve()
            return f"url('{_data_url(target)}')" if target.is_file() else m.group(0)

        text = re.sub(r"""url\((['"]?)(?!data:|https?:|/)([^'")]+)\1\)""", nested,
                      data.decode("utf-8"))
        data = text.encode("utf-8")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


__all__ = ["inline_cdn_assets"]
