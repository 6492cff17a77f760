"""What every request's input must be before a route sees it.

- JSON bodies are JSON: ``NaN``, ``Infinity``, ``-Infinity`` and numbers too
  large for a double are refused when the body is parsed (Python's decoder
  would accept them, and nothing could answer with them afterwards), and so are
  arrays and objects nested more than 1,000 deep (``wattx.domain.json_text``).
- Text carries no control characters where they mean nothing: none at all in
  the path and the query parameters, and none but tab, line feed and carriage
  return in the strings (member names included) of a JSON body. NUL in
  particular never reaches the database (PostgreSQL cannot store it).

Both refusals are ``422 validation_error`` problems whose ``errors`` name the
place, like any other input that does not match the schema.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.types import Scope

from wattx.api.problems import problem_response
from wattx.domain.json_text import checked_text, members_once

_CONTROL_IN_JSON = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_IN_URL = re.compile(r"[\x00-\x1f\x7f]")
CONTROL_CHARACTER = "string_control_character"
"""The ``type`` of the validation error for a control character."""


def _reject_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise json.JSONDecodeError("number out of range", text, 0)
    return value


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return members_once(pairs, _member_twice)


def _member_twice(name: str) -> json.JSONDecodeError:
    return json.JSONDecodeError("a member name appears twice in one object", "", 0)


# One decoder for every body: json.loads with these options built a new one for each.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)
_UNIQUE_MEMBERS_DECODER = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=_finite_float, object_pairs_hook=_unique_members
)


def loads(body: bytes | str, *, unique_members: bool = False) -> Any:
    """Decode a JSON text strictly: no non-finite numbers, no nesting deeper than
    :data:`~wattx.domain.json_text.MAX_NESTING`, and with ``unique_members`` no object
    naming a member twice. Otherwise as :func:`json.loads`."""
    if isinstance(body, str) and body.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", body, 0)
    decoder = _UNIQUE_MEMBERS_DECODER if unique_members else _DECODER
    return decoder.decode(checked_text(body))


def control_character_at(value: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...] | None:
    """Where in a decoded JSON value a string holds a control character, or ``None``."""
    if isinstance(value, str):
        return loc if _CONTROL_IN_JSON.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            if _CONTROL_IN_JSON.search(key):
                return (*loc, key)
            found = control_character_at(item, (*loc, key))
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = control_character_at(item, (*loc, index))
            if found is not None:
                return found
    return None


def _control_character_error(loc: tuple[str | int, ...]) -> dict[str, Any]:
    return {
        "loc": list(loc),
        "msg": "control characters are not allowed here",
        "type": CONTROL_CHARACTER,
    }


class StrictJsonRequest(Request):
    """A request whose JSON body is decoded by :func:`loads`."""

    unique_members: ClassVar[bool] = False
    """Whether an object of the body naming a member twice is refused (see
    :class:`UniqueMembersJsonRoute`)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body(), unique_members=self.unique_members)
        return self._json

    async def refuse_control_characters(self) -> None:
        """Raise a validation error if a string of the JSON body, or a field of a
        submitted form, holds a control character."""
        content_type = self.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await self.form()
            for key, value in form.multi_items():
                if _CONTROL_IN_JSON.search(key) or (
                    isinstance(value, str) and _CONTROL_IN_JSON.search(value)
                ):
                    raise RequestValidationError([_control_character_error(("body", key))])
            return
        body = await self.body()
        # JSON strings hold C0 controls only as escapes; DEL may also appear as it is.
        if b"\\" not in body and b"\x7f" not in body:
            return
        try:
            value = await self.json()
        except ValueError:
            return  # not JSON: the route reports that as it reports any malformed body
        found = control_character_at(value, ("body",))
        if found is not None:
            raise RequestValidationError([_control_character_error(found)])


class StrictJsonRoute(APIRoute):
    """Every route: its JSON body (or form) goes through :class:`StrictJsonRequest`."""

    request_class: ClassVar[type[StrictJsonRequest]] = StrictJsonRequest

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        request_class = self.request_class

        async def strict_handler(request: Request) -> Response:
            strict = request_class(request.scope, request.receive)
            await strict.refuse_control_characters()
            return await handle(strict)

        return strict_handler


class UniqueMembersJsonRequest(StrictJsonRequest):
    unique_members = True


class UniqueMembersJsonRoute(StrictJsonRoute):
    """A route whose JSON body also names no member twice in one object: the reading
    batches a concentrator posts, whose format refuses duplicate member names
    (docs/reading-format.md) as a single post's decoder does. Like a non-finite number,
    a duplicate anywhere refuses the whole body (``422 validation_error``,
    ``json_invalid``): the decoder cannot tell which batch it belongs to. Not every route:
    checking each object costs the decoder about a third more (0.3 µs an order on the
    order batch route)."""

    request_class = UniqueMembersJsonRequest


def url_text_problem(scope: Scope, found: tuple[str, ...]) -> Response:
    """The 422 answer to a request whose URL holds a control character at ``found``
    (from :func:`control_in_url`)."""
    return problem_response(
        status=422,
        code="validation_error",
        title="Invalid input",
        detail="the request does not match the schema",
        instance=scope["path"],
        extra={"errors": [_control_character_error(found)]},
    )


def control_in_url(scope: Scope) -> tuple[str, ...] | None:
    """Where the path or a query parameter holds a control character, or ``None``."""
    if _CONTROL_IN_URL.search(scope["path"]):
        return ("path",)
    raw = scope.get("query_string", b"")
    if not raw:
        return None
    for name, value in parse_qsl(raw.decode("latin-1"), keep_blank_values=True):
        if _CONTROL_IN_URL.search(name) or _CONTROL_IN_URL.search(value):
            return ("query", name)
    return None
