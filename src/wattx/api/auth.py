"""Dependencies: who is calling, may they, and are they within their rate limit."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from wattx.api.errors import RateLimitedError
from wattx.api.permissions import rule_for
from wattx.api.state import AppState, app_state, state_of
from wattx.services.errors import AuthenticationError, ForbiddenError
from wattx.services.principal import Principal

_EXEMPT_FROM_LIMITS = frozenset({"/healthz", "/readyz", "/metrics"})
HOW_TO_AUTHENTICATE = (
    "a bearer access token is required: send 'Authorization: Bearer <access_token>' with "
    "the access_token of POST /api/v1/auth/login {email, password} "
    "(an operator can also run 'wattx admin token --email ...')"
)


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
    if not rule.public:
        if not token:
            raise AuthenticationError(HOW_TO_AUTHENTICATE)
        principal = await state.accounts.authenticate(token)
        if not rule.allows(principal.role):
            raise ForbiddenError("your role may not use this route", role=principal.role.value)
    if group != "auth" and template not in _EXEMPT_FROM_LIMITS:
        await _limit(state, group, principal.user_id if principal else client)
    request.state.principal = principal


async def current_principal(request: Request) -> Principal:
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
