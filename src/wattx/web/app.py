"""Puts the dashboard into the app: page routers, assets, HTML errors, browser cookies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.staticfiles import StaticFiles

from wattx.api.problems import PROBLEM_HANDLERS, ProblemHandler
from wattx.config import Settings
from wattx.domain.errors import DomainError
from wattx.web import governance, operator, participant, public
from wattx.web.assets import OWN, VendorFiles, node_modules
from wattx.web.render import page
from wattx.web.session import BrowserCookieMiddleware

WEB_ROUTERS: tuple[APIRouter, ...] = (
    public.router,
    participant.router,
    operator.router,
    governance.router,
)
"""The dashboard's page routers, in the order ``install_web`` includes them."""


def install_web(app: FastAPI, settings: Settings) -> None:
    for router in WEB_ROUTERS:
        app.include_router(router)
    # Scripts and styles go out gzipped to a browser that accepts it (a phone's
    # first visit downloads about a third of the bytes).
    app.mount(
        "/static", GZipMiddleware(StaticFiles(directory=OWN), minimum_size=512), name="static"
    )
    app.mount(
        "/vendor", GZipMiddleware(VendorFiles(node_modules()), minimum_size=512), name="vendor"
    )
    for error in (DomainError, RequestValidationError, StarletteHTTPException):
        app.add_exception_handler(error, _html_or_problem(PROBLEM_HANDLERS[error]))
    app.add_middleware(BrowserCookieMiddleware, max_age=settings.refresh_token_ttl_s)


def wants_html(request: Request) -> bool:
    """A browser asking for a page (or htmx for a fragment), not an API client."""
    if request.url.path.startswith("/api/"):
        return False
    return "text/html" in request.headers.get("accept", "") or "hx-request" in request.headers


def _html_or_problem(
    problem_handler: ProblemHandler,
) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        if not wants_html(request):
            return await problem_handler(request, exc)
        status, code, detail = _describe(exc)
        if status == 401 and request.method == "GET":
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        return page(
            request,
            "error.html",
            {"status": status, "code": code, "detail": detail},
            status_code=status,
        )

    return handle


def _describe(exc: Exception) -> tuple[int, str, str]:
    if isinstance(exc, DomainError):
        return exc.http_status, exc.code, exc.detail
    if isinstance(exc, StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return exc.status_code, code, str(exc.detail)
    return 422, "validation_error", "the request does not match what this page expects"
