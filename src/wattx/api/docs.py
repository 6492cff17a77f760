"""The interactive API docs (``/docs``), with Swagger UI served from the installed
``swagger-ui-bundle`` package: no CDN, so they work offline."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from wattx.api.input import StrictJsonRoute

DOCS_URL = "/docs"
ASSETS_URL = "/docs/assets"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and the Swagger UI files it loads, all from this process."""
    assets = Path(swagger_ui_bundle.swagger_ui_path)
    app.mount(ASSETS_URL, StaticFiles(directory=assets), name="docs-assets")
    for path, page in ((DOCS_URL, _docs), (OAUTH2_REDIRECT_URL, _oauth2_redirect)):
        app.router.add_api_route(
            path, page, include_in_schema=False, route_class_override=StrictJsonRoute
        )


# Module functions that find their app in the request, not closures over it: FastAPI keeps
# every endpoint it has classified in a process-wide cache, and a closure would keep its app,
# with the app's database, chain and metrics, for as long as the process lives.
async def _docs(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    return get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} API",
        swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
    )


async def _oauth2_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()
