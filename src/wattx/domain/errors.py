"""Domain errors: one exception type per rule, each with a stable ``code``.

The API turns any :class:`DomainError` into an RFC 9457 problem response whose
``code`` is the class attribute and whose status is ``http_status``. Codes are
part of the public contract: never rename one, add a new class instead.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every rule violation wattx reports to a caller."""

    code: ClassVar[str] = "domain_error"
    http_status: ClassVar[int] = 400
    title: ClassVar[str] = "Request violates a market rule"

    def __init__(self, detail: str, **context: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.context = context


class ValidationError(DomainError):
    code = "validation_error"
    http_status = 422
    title = "Invalid input"


class NotFoundError(DomainError):
    code = "not_found"
    http_status = 404
    title = "Not found"


class ConflictError(DomainError):
    code = "conflict"
    http_status = 409
    title = "Conflict with the current state"


class PermissionDeniedError(DomainError):
    code = "permission_denied"
    http_status = 403
    title = "Permission denied"
