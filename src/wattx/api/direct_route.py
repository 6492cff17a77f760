"""A route whose requests skip FastAPI's general request handler.

FastAPI handles every request of every route with one general function: it reads
the body, decides by the content type whether to decode it, solves the route's
dependency graph (caching, scopes, the ``Request`` parameter, each kind of
parameter in turn), validates the body, then calls the endpoint. On the busiest
route, one order, that generality was 19 % of an order's CPU (docs/operations.md,
"Single orders: past FastAPI's general handler").

:class:`DirectBodyRoute` is declared, documented and matched as any route, and its
requests have the same effects in the same order as under FastAPI's handler, for a
route of one shape only: an ``async`` endpoint taking the body model and the
``Request`` and returning a ``Response``, with no dependency of its own. The one
route-wide dependency, :func:`~wattx.api.auth.authorize`, is called directly
(``create_app`` checks it stays the only one). The shape is checked when the route
is made, so a route that grows a parameter fails at import, not on a request.
"""

from __future__ import annotations

import email.message
import inspect
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.utils import request_body_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic_core import PydanticUndefined

from wattx.api.auth import authorize
from wattx.api.input import StrictJsonRequest, StrictJsonRoute

_JSON = "application/json"


def _is_json(content_type: str) -> bool:
    """Whether FastAPI decodes a body of this content type as JSON (its own test)."""
    if content_type == _JSON:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


async def decoded_body(request: StrictJsonRequest) -> Any:
    """The body as FastAPI's handler gives it to validation: missing when empty, decoded
    when the content type says JSON, else the bytes; a body that is not JSON is the same
    ``json_invalid`` error, one that cannot be read the same 400."""
    try:
        raw = await request.body()
        if not raw:
            return PydanticUndefined
        content_type = request.headers.get("content-type")
        # FastAPI decodes a body without a content type only when told to be lax.
        if content_type and _is_json(content_type):
            return await request.json()
        return raw
    except json.JSONDecodeError as invalid:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", invalid.pos),
                    "msg": "JSON decode error",
                    "input": {},
                    "ctx": {"error": invalid.msg},
                }
            ],
            body=invalid.doc,
        ) from invalid
    except HTTPException:
        raise
    except Exception as unreadable:
        raise HTTPException(
            status_code=400, detail="There was an error parsing the body"
        ) from unreadable


def strict_content_type(route_or_router: APIRoute | APIRouter) -> bool:
    """Whether a body without a JSON content type stays undecoded (FastAPI's default,
    which :func:`decoded_body` follows)."""
    value = route_or_router.strict_content_type
    return bool(value.value if isinstance(value, DefaultPlaceholder) else value)


class DirectBodyRoute(StrictJsonRoute):
    """A route ``async def endpoint(body: Model, request: Request) -> Response`` whose
    requests go straight to it: body strictly decoded, :func:`authorize`, body validated
    by FastAPI's own function (the same errors), endpoint called."""

    def _parameter_names(self) -> tuple[str, str]:
        """The endpoint's body and request parameters; raise if it is not of the shape."""
        dependant = self.dependant
        bodies = dependant.body_params
        request_name = dependant.request_param_name
        unfit = [
            reason
            for reason, found in (
                ("is not a coroutine function", not inspect.iscoroutinefunction(self.endpoint)),
                ("does not take exactly one body model", len(bodies) != 1),
                ("does not take the Request", request_name is None),
                ("embeds its body", self.body_field is not (bodies[0] if bodies else None)),
                ("accepts JSON without a JSON content type", not strict_content_type(self)),
                (
                    "takes other parameters or dependencies",
                    bool(
                        dependant.path_params
                        or dependant.query_params
                        or dependant.header_params
                        or dependant.cookie_params
                        or dependant.dependencies
                        or dependant.websocket_param_name
                        or dependant.http_connection_param_name
                        or dependant.response_param_name
                        or dependant.background_tasks_param_name
                        or dependant.security_scopes_param_name
                    ),
                ),
            )
            if found
        ]
        if unfit or request_name is None:
            raise TypeError(f"{self.path}: a DirectBodyRoute's endpoint {' and '.join(unfit)}")
        return bodies[0].name, request_name

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        body_name, request_name = self._parameter_names()
        body_fields = [self.dependant.body_params[0]]
        endpoint = self.endpoint

        async def direct_handler(request: Request) -> Response:
            strict = StrictJsonRequest(request.scope, request.receive)
            await strict.refuse_control_characters()
            body = await decoded_body(strict)
            await authorize(strict)
            values, errors = await request_body_to_args(
                body_fields=body_fields, received_body=body, embed_body_fields=False
            )
            if errors:
                raise RequestValidationError(
                    errors, body=None if body is PydanticUndefined else body
                )
            response = await endpoint(**{body_name: values[body_name], request_name: strict})
            if not isinstance(response, Response):
                raise TypeError(f"{self.path}: a DirectBodyRoute's endpoint must return a Response")
            return response

        return direct_handler
