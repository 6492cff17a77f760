"""Errors raised by the HTTP layer itself (not by a use case)."""

from __future__ import annotations

from wattx.domain.errors import DomainError


class PayloadTooLargeError(DomainError):
    code = "payload_too_large"
    http_status = 413
    title = "Request body too large"


class RateLimitedError(DomainError):
    code = "rate_limited"
    http_status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after_s: int) -> None:
        super().__init__(detail, retry_after_s=retry_after_s)
        self.headers = {"Retry-After": str(retry_after_s)}
