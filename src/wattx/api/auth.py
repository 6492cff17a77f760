"""Dependencies: who is calling, may they, and are they within their rate limit.

API routes (``/api/...``) take a bearer access token. Dashboard pages (every
other route) also take the browser session: the access token in the HttpOnly
cookie :data:`SESSION_COOKIE`, renewed from the refresh token in
:data:`REFRESH_COOKIE` when it has expired (the new pair is left on
``request.state.renewed_session`` for the dashboard to set as cookies).
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import Depends, Request

from wattx.api.errors import RateLimitedError
from wattx.api.permissions import rule_for
from wattx.api.state import AppState, app_state, state_of
from wattx.services.errors import AuthenticationError, ForbiddenError, InvalidTokenError
from wattx.services.identity.accounts import TokenPair
from wattx.services.identity.tokens import hash_refresh_token
from wattx.services.principal import Principal

_EXEMPT_FROM_LIMITS = frozenset({"/healthz", "/readyz", "/metrics"})
HOW_TO_AUTHENTICATE = (
    "a bearer access token is required: send 'Authorization: Bearer <access_token>' with "
    "the access_token of POST /api/v1/auth/login {email, password} "
    "(an operator can also run 'wattx admin token --email ...')"
)

SESSION_COOKIE = "wattx_session"
REFRESH_COOKIE = "wattx_refresh"
# A refresh token presented again within this many seconds of its rotation (a
# browser sends parallel requests with the same expired cookie) gets the pair
# that rotation issued, instead of revoking the session as a reuse.
_RENEWAL_GRACE_S = 30.0


async def authorize(request: Request) -> None:
    """Applied to every route: rate limit, authenticate, check the permission matrix."""
    state = state_of(request)
    template = _route_template(request)
    rule = rule_for(request.method, template)
    if rule is None:
        raise ForbiddenError("no permission rule for this route")
    group = "auth" if template.startswith("/api/v1/auth/") else "default"
    client = request.client.host if request.client else "unknown"
    if group == "auth":
        await _limit(state, group, client)
    principal: Principal | None = None
    token = _bearer_token(request)
    request.state.auth_via = "bearer" if token else None
    page = not template.startswith("/api/")
    if page and not token and request.cookies.get(SESSION_COOKIE):
        principal = await _browser_principal(request, state, required=not rule.public)
        request.state.auth_via = "cookie" if principal else None
    if not rule.public:
        if principal is None:
            if not token:
                raise AuthenticationError(HOW_TO_AUTHENTICATE)
            principal = await state.accounts.authenticate(token)
        if not rule.allows(principal.role):
            raise ForbiddenError("your role may not use this route", role=principal.role.value)
    if group != "auth" and template not in _EXEMPT_FROM_LIMITS:
        await _limit(state, group, principal.user_id if principal else client)
    request.state.principal = principal


async def _browser_principal(
    request: Request, state: AppState, *, required: bool
) -> Principal | None:
    """The session behind the browser's cookies, renewing an expired access token.

    On a public page a dead session is no error: the page is shown anonymously.
    """
    try:
        return await state.accounts.authenticate(request.cookies[SESSION_COOKIE])
    except InvalidTokenError:
        refresh = request.cookies.get(REFRESH_COOKIE)
        if not refresh:
            if required:
                raise
            return None
    try:
        pair = await _renew(request, state, refresh)
        principal = await state.accounts.authenticate(pair.access_token)
    except AuthenticationError:
        if required:
            raise
        return None
    request.state.renewed_session = pair
    return principal


async def _renew(request: Request, state: AppState, refresh_token: str) -> TokenPair:
    app_state = request.app.state
    if not hasattr(app_state, "renewals"):
        app_state.renewals = {}
        app_state.renewal_lock = asyncio.Lock()
    renewals: dict[str, tuple[float, TokenPair]] = app_state.renewals
    key = hash_refresh_token(refresh_token)
    async with app_state.renewal_lock:
        now = time.monotonic()
        recent = renewals.get(key)
        if recent is not None and recent[0] > now:
            return recent[1]
        pair = await state.accounts.refresh(refresh_token)
        for stale in [k for k, (until, _) in renewals.items() if until <= now]:
            del renewals[stale]
        renewals[key] = (now + _RENEWAL_GRACE_S, pair)
        return pair


async def current_principal(request: Request) -> Principal:
    return principal_of(request)


def principal_of(request: Request) -> Principal:
    """Who :func:`authorize` found calling (it runs before every route's own dependencies)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise AuthenticationError(HOW_TO_AUTHENTICATE)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
State = Annotated[AppState, Depends(app_state)]


async def _limit(state: AppState, group: str, client: str) -> None:
    settings = state.settings
    limit = (
        settings.rate_limit_auth_per_window
        if group == "auth"
        else settings.rate_limit_default_per_window
    )
    retry_after = await state.rate_limiter.hit(
        f"{group}:{client}", limit, settings.rate_limit_window_s
    )
    if retry_after is not None:
        raise RateLimitedError(
            f"rate limit of {limit} requests per {settings.rate_limit_window_s}s exceeded",
            retry_after_s=retry_after,
        )


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    # EventSource cannot set headers, so the event stream also takes the token as a query.
    if request.url.path == "/api/v1/events":
        return request.query_params.get("access_token")
    return None


def _route_template(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    # Dependencies run inside a matched route, so the template is always there.
    return path if isinstance(path, str) else request.url.path
