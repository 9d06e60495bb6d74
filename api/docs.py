"""The API's documentation pages, served whole from the installation.

FastAPI's own /docs and /redoc load Swagger UI and ReDoc from a CDN, so in a closed network
they are blank. Here their script and styles come from the `fastapi-offline` package
(Swagger UI and ReDoc builds, pinned with it in pyproject.toml), under /docs-assets.

The ReDoc build still names one image on Redocly's CDN (its logo, at the foot of the menu):
its script is served with that address pointed at a file of the installation, so the page
asks no other host for anything.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

ASSETS = "/docs-assets"
REDOC_SCRIPT = "/docs-redoc/redoc.standalone.js"
_REDOC_CDN_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


@lru_cache(maxsize=1)
def _redoc_script() -> bytes:
    script = (files("fastapi_offline") / "static" / "redoc.standalone.js").read_bytes()
    return script.replace(_REDOC_CDN_LOGO, f"{ASSETS}/favicon.png".encode())


def serve_docs(app: FastAPI) -> None:
    """Add /docs, /redoc and their assets to an app created with ``docs_url=None, redoc_url=None``."""
    app.mount(ASSETS, StaticFiles(directory=str(files("fastapi_offline") / "static")), name="docs-assets")
    title = app.title

    async def swagger(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{title} - API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon.png",
                                   oauth2_redirect_url="/docs/oauth2-redirect")

    async def redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{title} - ReDoc",
                              redoc_js_url=REDOC_SCRIPT,
                              redoc_favicon_url=f"{ASSETS}/favicon.png", with_google_fonts=False)

    app.add_route("/docs", swagger, include_in_schema=False)
    app.add_route("/docs/oauth2-redirect", redirect, include_in_schema=False)
    async def redoc_script(request: Request) -> Response:
        return Response(_redoc_script(), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

    app.add_route("/redoc", redoc, include_in_schema=False)
    app.add_route(REDOC_SCRIPT, redoc_script, include_in_schema=False)
