"""ASGI middleware: request ids, JSON access logs, latency metrics, body-size limit."""

from __future__ import annotations

import logging
import re
import time

import structlog
from prometheus_client import CollectorRegistry, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wattx.api.errors import PayloadTooLargeError
from wattx.api.logging import logs_at
from wattx.api.problems import problem_response
from wattx.domain.ids import new_id

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_log = structlog.get_logger("wattx.access")


class RequestContextMiddleware:
    """Gives each request an id (the caller's ``X-Request-ID`` when well formed), logs it
    as one JSON line and records its latency under the route template."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.latency = Histogram(
            "wattx_http_request_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        )
        # Each (method, route, status) series, found once: the client library's
        # `labels` checks and joins its arguments on every call.
        self._series: dict[tuple[str, str, int], Histogram] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = (_header(scope, b"x-request-id") or b"").decode("latin-1")
        request_id = offered if _REQUEST_ID.match(offered) else new_id()
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            self._latency_of(scope["method"], route, status).observe(elapsed)
            if logs_at(logging.INFO):
                _log.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    route=route,
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("request_id")

    def _latency_of(self, method: str, route: str, status: int) -> Histogram:
        key = (method, route, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self.latency.labels(method, route, str(status))
        return series


class BodySizeLimitMiddleware:
    """Refuses bodies over ``max_bytes`` with a 413 problem, by header or by counting."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, per_path: dict[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Exact paths with a limit of their own (a batch route), instead of max_bytes.
        self.per_path = dict(per_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.max_bytes)
        declared = _header(scope, b"content-length")
        if declared is not None:
            # The server holds the client to its declared length, so the header decides.
            if not declared.isdigit() or int(declared) > limit:
                await self._refuse(scope, receive, send, limit)
                return
            await self.app(scope, receive, send)
            return
        # No declared length (chunked upload): read it here, up to the limit.
        buffered: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > limit:
                await self._refuse(scope, receive, send, limit)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem_response(
            status=413,
            code=PayloadTooLargeError.code,
            title=PayloadTooLargeError.title,
            detail=f"request body exceeds {limit} bytes",
            instance=scope["path"],
        )
        await response(scope, receive, send)


def _header(scope: Scope, name: bytes) -> bytes | None:
    """The value of a request header (``name`` in lower case, as the server gives it;
    the last one when repeated), read from the scope without building a mapping."""
    value = None
    for key, found in scope.get("headers", ()):
        if key == name:
            value = found
    return value


_CREDENTIAL_HEADERS = frozenset({b"authorization", b"cookie"})


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
# The interactive API docs (Swagger UI, served from this process) start with an
# inline script and set inline styles; only they get this looser policy, which
# still loads nothing from elsewhere.
_DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect"})


class SecurityHeadersMiddleware:
    """Headers every response carries.

    - ``X-Content-Type-Options: nosniff`` and a strict ``Content-Security-Policy``
      (no inline script, nothing from elsewhere) on every response;
    - ``Cache-Control: no-store`` when the request carried credentials or the
      response may carry tokens (``/api/v1/auth/*``), unless the route set its own;
    - ``Strict-Transport-Security`` when the request came over https.
    """

    def __init__(self, app: ASGIApp, hsts_max_age_s: int) -> None:
        self.app = app
        self.hsts = f"max-age={hsts_max_age_s}; includeSubDomains".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        private = (
            any(name in _CREDENTIAL_HEADERS for name, _ in scope.get("headers", ()))
            or b"access_token=" in scope.get("query_string", b"")
            or path.startswith("/api/v1/auth/")
        )
        policy = (_DOCS_POLICY if path in _DOCS_PATHS else CONTENT_SECURITY_POLICY).encode()
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                headers.append((b"x-content-type-options", b"nosniff"))
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", policy))
                if private and b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
                if https:
                    headers.append((b"strict-transport-security", self.hsts))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
