"""Browser sessions: the cookies that carry them and the CSRF check on every form.

The session is the API's own token pair (see ``wattx.api.auth``): the access
token and the refresh token live in HttpOnly cookies, ``SameSite=Lax``, and
``Secure`` whenever the request came over TLS. Forms carry a CSRF token that
must equal the HttpOnly, ``SameSite=Strict`` cookie :data:`CSRF_COOKIE`
(double submit); htmx sends it as the ``X-CSRF-Token`` header. A request
authenticated by a bearer header needs no CSRF token: a browser never adds
that header to a forged request.
"""

from __future__ import annotations

import hmac
import secrets
from http.cookies import SimpleCookie

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wattx.api.auth import REFRESH_COOKIE, SESSION_COOKIE
from wattx.domain.errors import DomainError
from wattx.services.identity.accounts import TokenPair

CSRF_COOKIE = "wattx_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class CsrfError(DomainError):
    code = "csrf_failed"
    http_status = 403
    title = "Form expired or not sent from this site"


def _cookie(name: str, value: str, *, secure: bool, same_site: str, max_age: int | None) -> bytes:
    jar: SimpleCookie = SimpleCookie()
    jar[name] = value
    morsel = jar[name]
    morsel["path"] = "/"
    morsel["httponly"] = True
    morsel["samesite"] = same_site
    if secure:
        morsel["secure"] = True
    if max_age is not None:
        morsel["max-age"] = max_age
    return morsel.OutputString().encode("latin-1")


def session_cookies(pair: TokenPair, *, secure: bool, max_age: int) -> list[bytes]:
    return [
        _cookie(SESSION_COOKIE, pair.access_token, secure=secure, same_site="Lax", max_age=max_age),
        _cookie(
            REFRESH_COOKIE, pair.refresh_token, secure=secure, same_site="Lax", max_age=max_age
        ),
    ]


def cleared_session_cookies(*, secure: bool) -> list[bytes]:
    return [
        _cookie(name, "", secure=secure, same_site="Lax", max_age=0)
        for name in (SESSION_COOKIE, REFRESH_COOKIE)
    ]


def is_tls(scope: Scope) -> bool:
    return scope.get("scheme") == "https"


def csrf_token(request: Request) -> str:
    token: str = request.scope.setdefault("state", {}).get("csrf_token", "")
    return token


async def require_csrf(request: Request) -> None:
    """Applied to every page route: unsafe methods must carry the CSRF token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if getattr(request.state, "auth_via", None) == "bearer":
        return
    expected = request.cookies.get(CSRF_COOKIE)
    sent: object = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        sent = form.get(CSRF_FIELD)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(expected, sent):
        raise CsrfError("reload the page and send the form again")


_NOT_PAGES = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc"})


def _is_page(path: str) -> bool:
    return not path.startswith(("/api/", "/static/", "/vendor/", "/docs/")) and (
        path not in _NOT_PAGES
    )


class BrowserCookieMiddleware:
    """On pages: give a browser without one its CSRF cookie, and set a renewed session.

    The token is chosen before the page renders (so its forms carry it) and set
    on the response; a renewed token pair (``wattx.api.auth``) replaces the
    session cookies.
    """

    def __init__(self, app: ASGIApp, *, max_age: int) -> None:
        self.app = app
        self.max_age = max_age

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_page(scope["path"]):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        existing = Request(scope).cookies.get(CSRF_COOKIE)
        fresh = None if existing else secrets.token_urlsafe(32)
        state["csrf_token"] = existing or fresh
        secure = is_tls(scope)

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra: list[bytes] = []
                if fresh is not None:
                    extra.append(
                        _cookie(CSRF_COOKIE, fresh, secure=secure, same_site="Strict", max_age=None)
                    )
                renewed = state.get("renewed_session")
                if isinstance(renewed, TokenPair) and not state.get("session_cookies_set"):
                    extra.extend(session_cookies(renewed, secure=secure, max_age=self.max_age))
                message["headers"] = [
                    *message.get("headers", []),
                    *((b"set-cookie", value) for value in extra),
                ]
            await send(message)

        await self.app(scope, receive, send_with_cookies)
