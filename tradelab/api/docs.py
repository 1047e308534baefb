"""The API's documentation pages (Swagger UI at ``/docs``, ReDoc at ``/redoc``), served offline.

FastAPI's own ``/docs`` and ``/redoc`` load their JavaScript, CSS, favicon
and (ReDoc) Google Fonts from CDNs, so on an offline trading machine they
are blank pages. The same pages are built here with FastAPI's own HTML
helpers, pointing at the asset files shipped by the ``fastapi-offline``
package (Swagger UI bundle, its CSS, ReDoc standalone, a favicon; MIT, the
bundled libraries keep their own licence headers), mounted under
:data:`STATIC_URL`.

The pages and assets are ordinary routes behind the same middleware as every
other route: the request guard rate-limits them per client address, and,
like ``/openapi.json``, they need no credential (the schema is public; the
operations it describes are not).
"""

from __future__ import annotations

import functools
import re
from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse, Response

STATIC_URL = "/docs-static"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
REDOC_JS = "redoc.standalone.js"
# ReDoc's sidebar footer always shows Redocly's logo from Redocly's CDN; offline that is a
# failed request. A transparent 1x1 GIF takes its place (the link text stays).
_REDOC_CDN = re.compile(rb"https://cdn\.redoc\.ly/[^\"'`]*")
_BLANK_GIF = b"data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"


def asset_dir() -> Path:
    """The folder of the offline Swagger UI / ReDoc assets (inside ``fastapi-offline``)."""
    return Path(str(files("fastapi_offline") / "static"))


@functools.cache
def redoc_js() -> bytes:
    """ReDoc's standalone bundle with its CDN logo URL replaced (read once)."""
    return _REDOC_CDN.sub(_BLANK_GIF, (asset_dir() / REDOC_JS).read_bytes())


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs``, its OAuth2 redirect page and ``/redoc`` from local assets.

    ``app`` must be built with ``docs_url=None, redoc_url=None`` so FastAPI
    does not register its CDN-backed pages first.
    """
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url

    def asset(request: Request, name: str) -> str:
        # root_path: correct URLs behind a reverse proxy mounted under a prefix.
        return f"{request.scope.get('root_path', '')}{STATIC_URL}/{name}"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}", title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=f"{root}{redirect_url}" if redirect_url else None,
            swagger_js_url=asset(request, "swagger-ui-bundle.js"),
            swagger_css_url=asset(request, "swagger-ui.css"),
            swagger_favicon_url=asset(request, "favicon.png"),
            swagger_ui_parameters=app.swagger_ui_parameters)

    if redirect_url:
        @app.get(redirect_url, include_in_schema=False)
        async def swagger_ui_redirect() -> HTMLResponse:
            return get_swagger_ui_oauth2_redirect_html()

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}{openapi_url}", title=f"{app.title} - ReDoc",
            redoc_js_url=asset(request, REDOC_JS),
            redoc_favicon_url=asset(request, "favicon.png"),
            with_google_fonts=False)  # the fonts come from Google's CDN; the system's serve

    # Registered before the mount, so it answers for this one file of the folder.
    @app.get(f"{STATIC_URL}/{REDOC_JS}", include_in_schema=False)
    async def redoc_bundle() -> Response:
        return Response(redoc_js(), media_type="text/javascript")

    app.mount(STATIC_URL, StaticFiles(directory=asset_dir()), name="docs-static")


__all__ = ["DOCS_URL", "REDOC_URL", "STATIC_URL", "asset_dir", "install_docs", "redoc_js"]
