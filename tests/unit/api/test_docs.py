"""The API's documentation pages name no asset outside the server (offline machines)."""

from __future__ import annotations

import re

import pytest

from tests.unit.api.helpers import Harness

# Any absolute URL in a src/href attribute: the pages must only name the server's own paths.
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_local_assets(h: Harness, page: str) -> None:
    r = h.client.get(page)
    assert r.status_code == 200
    assert "cdn" not in r.text.lower() and "fonts.googleapis" not in r.text
    assert not EXTERNAL.search(r.text), r.text
    assets = re.findall(r"""(?:src|href)=["']?(/docs-static/[^"' >]+)""", r.text)
    assert assets, r.text
    for url in assets:
        got = h.client.get(url)
        assert got.status_code == 200 and len(got.content) > 1000, url


def test_oauth2_redirect_page_is_served(h: Harness) -> None:
    assert h.client.get("/docs/oauth2-redirect").status_code == 200


def test_docs_routes_stay_out_of_the_schema(h: Harness) -> None:
    paths = h.client.get("/openapi.json").json()["paths"]
    assert not any(p.startswith(("/docs", "/redoc")) for p in paths)


def test_redoc_bundle_names_no_cdn_image(h: Harness) -> None:
    body = h.client.get("/docs-static/redoc.standalone.js")
    assert body.status_code == 200 and body.headers["content-type"].startswith("text/javascript")
    assert b"cdn.redoc.ly" not in body.content and len(body.content) > 500_000
