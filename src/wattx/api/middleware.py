"""The service's HTTP edge, one ASGI layer: request ids, JSON access logs, latency
metrics, the URL's text, the body-size limit and the headers every response carries.

One layer rather than one per concern: every layer is a coroutine call per request and
a wrapped ``send`` per response message, and four of them were a few percent of a
single order's CPU (docs/operations.md, "Single orders: the edge in one layer"). What
each concern does, and the order the concerns act in, is as it was with four:

1. the request gets its id (the caller's ``X-Request-ID`` when well formed), bound to
   the log context, and its latency is measured from here;
2. a path or query parameter holding a control character is refused (422; a
   WebSocket is closed with 1008);
3. a body over the limit is refused (413), by its declared length or by counting;
4. every answer, refusals included, carries the security headers, then the request id.
"""

from __future__ import annotations

import logging
import re
import time

import structlog
from prometheus_client import CollectorRegistry, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wattx.api.errors import PayloadTooLargeError
from wattx.api.input import control_in_url, url_text_problem
from wattx.api.logging import logs_at
from wattx.api.problems import problem_response
from wattx.domain.ids import new_id

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_log = structlog.get_logger("wattx.access")

_CREDENTIAL_HEADERS = frozenset({b"authorization", b"cookie"})

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
_POLICY = CONTENT_SECURITY_POLICY.encode()
_DOCS_POLICY_BYTES = _DOCS_POLICY.encode()


class EdgeMiddleware:
    """Every HTTP request and WebSocket passes here before the routes (see the module's
    docstring).

    Headers every response carries:

    - ``X-Content-Type-Options: nosniff`` and a strict ``Content-Security-Policy``
      (no inline script, nothing from elsewhere) on every response;
    - ``Cache-Control: no-store`` when the request carried credentials or the
      response may carry tokens (``/api/v1/auth/*``), unless the route set its own;
    - ``Strict-Transport-Security`` when the request came over https;
    - ``X-Request-ID``, the request's id.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        registry: CollectorRegistry,
        hsts_max_age_s: int,
        max_body_bytes: int,
        body_limits: dict[str, int] | None = None,
    ) -> None:
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
        self.hsts = f"max-age={hsts_max_age_s}; includeSubDomains".encode()
        self.max_body_bytes = max_body_bytes
        # Exact paths with a limit of their own (a batch route), instead of max_body_bytes.
        self.body_limits = dict(body_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "websocket" and control_in_url(scope) is not None:
                await send({"type": "websocket.close", "code": 1008})
                return
            await self.app(scope, receive, send)
            return
        offered = b""
        declared = None
        private = False
        # One pass over the request's headers (the server gives names in lower case;
        # the last of a repeated one counts).
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                offered = value
            elif name == b"content-length":
                declared = value
            elif name in _CREDENTIAL_HEADERS:
                private = True
        request_id = offered.decode("latin-1")
        if not _REQUEST_ID.match(request_id):
            request_id = new_id()
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        path = scope["path"]
        status = 500
        extra = [
            (b"x-content-type-options", b"nosniff"),
            (b"content-security-policy", _DOCS_POLICY_BYTES if path in _DOCS_PATHS else _POLICY),
        ]
        if (
            private
            or path.startswith("/api/v1/auth/")
            or b"access_token=" in scope.get("query_string", b"")
        ):
            extra.append((b"cache-control", b"no-store"))
        if scope.get("scheme") == "https":
            extra.append((b"strict-transport-security", self.hsts))
        tail = (b"x-request-id", request_id.encode("latin-1"))

        async def send_at_the_edge(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", ()))
                for name, _ in headers:
                    # A route's own policy or cache rule stands.
                    lowered = name.lower()
                    if lowered == b"content-security-policy" or lowered == b"cache-control":
                        _drop(extra, lowered)
                headers.extend(extra)
                headers.append(tail)
                message["headers"] = headers
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            found = control_in_url(scope)
            if found is not None:
                await url_text_problem(scope, found)(scope, receive, send_at_the_edge)
                return
            limit = self.body_limits.get(path, self.max_body_bytes)
            if declared is not None:
                # The server holds the client to its declared length, so the header decides.
                if not declared.isdigit() or int(declared) > limit:
                    await _too_large(scope, receive, send_at_the_edge, limit)
                    return
                await self.app(scope, receive, send_at_the_edge)
                return
            replay = await _read_up_to(receive, limit)
            if replay is None:
                await _too_large(scope, receive, send_at_the_edge, limit)
                return
            await self.app(scope, replay, send_at_the_edge)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            self._latency_of(scope["method"], route, status).observe(elapsed)
            if logs_at(logging.INFO):
                _log.info(
                    "request",
                    method=scope["method"],
                    path=path,
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


def _drop(headers: list[tuple[bytes, bytes]], name: bytes) -> None:
    headers[:] = [header for header in headers if header[0] != name]


async def _read_up_to(receive: Receive, limit: int) -> Receive | None:
    """A body without a declared length (chunked upload), read here up to ``limit``
    bytes: a ``receive`` that replays it, or ``None`` when it is longer."""
    buffered: list[Message] = []
    seen = 0
    while True:
        message = await receive()
        buffered.append(message)
        if message["type"] != "http.request":
            break
        seen += len(message.get("body", b""))
        if seen > limit:
            return None
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        return buffered.pop(0) if buffered else await receive()

    return replay


async def _too_large(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    response = problem_response(
        status=413,
        code=PayloadTooLargeError.code,
        title=PayloadTooLargeError.title,
        detail=f"request body exceeds {limit} bytes",
        instance=scope["path"],
    )
    await response(scope, receive, send)


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"
