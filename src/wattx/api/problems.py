"""RFC 9457 problem details for every error the API returns.

Each problem carries ``type``, ``title``, ``status``, ``detail``, ``instance``
(the request path) and wattx's stable ``code``; rule violations add their
context under ``context`` and validation failures list ``errors``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from wattx.domain.errors import DomainError
from wattx.services.errors import StorageUnavailableError
from wattx.store.db import is_storage_failure

PROBLEM_MEDIA_TYPE = "application/problem+json"
_log = structlog.get_logger("wattx.api")

_HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("payload_too_large", "Request body too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    429: ("rate_limited", "Too many requests"),
}


def problem_type(code: str) -> str:
    return f"urn:wattx:problem:{code}"


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
    }
    if extra:
        body.update(jsonable_encoder(extra))
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    extra = {"context": exc.context} if exc.context else None
    headers = getattr(exc, "headers", None)
    return problem_response(
        status=exc.http_status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        extra=extra,
        headers=headers,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return problem_response(
        status=422,
        code="validation_error",
        title="Invalid input",
        detail="the request does not match the schema",
        instance=request.url.path,
        extra={"errors": errors},
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, title = _HTTP_CODES.get(exc.status_code, ("http_error", "HTTP error"))
    return problem_response(
        status=exc.status_code,
        code=code,
        title=title,
        detail=str(exc.detail),
        instance=request.url.path,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # Two requests raced to create the same unique thing (email, wallet, serial):
    # the loser sees the conflict the checks before the insert would have reported.
    return problem_response(
        status=409,
        code="conflict",
        title="Conflict with the current state",
        detail="a concurrent request created the same resource",
        instance=request.url.path,
    )


async def _storage_error(request: Request, exc: Exception) -> JSONResponse:
    """A database that cannot be reached or written answers 503, never 500: the
    request can be sent again (with its ``Idempotency-Key``) once storage is back."""
    if not is_storage_failure(exc):
        return await _unexpected_error(request, exc)
    _log.warning("storage_unavailable", path=request.url.path, error=type(exc).__name__)
    unavailable = StorageUnavailableError("the database cannot be reached or written just now")
    return await _domain_error(request, unavailable)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    _log.exception("unhandled_error", path=request.url.path, error=type(exc).__name__)
    return problem_response(
        status=500,
        code="internal_error",
        title="Internal server error",
        detail="the server failed to handle this request",
        instance=request.url.path,
    )


ProblemHandler = Callable[[Request, Exception], Awaitable[JSONResponse]]

PROBLEM_HANDLERS: dict[type[Exception], ProblemHandler] = {
    DomainError: _domain_error,
    RequestValidationError: _validation_error,
    StarletteHTTPException: _http_error,
    IntegrityError: _integrity_error,
    Exception: _unexpected_error,
}
"""The handler for each kind of error, for layers that answer some requests otherwise."""


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    for storage_error in (SQLAlchemyError, ConnectionError, TimeoutError):
        app.add_exception_handler(storage_error, _storage_error)
    app.add_exception_handler(Exception, _unexpected_error)


def problem_schema(*codes: str) -> dict[str, Any]:
    """OpenAPI fragment documenting a problem response (used on every route)."""
    return {
        "description": "Problem details (RFC 9457); `code` is one of: " + ", ".join(codes),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
