"""A DirectBodyRoute answers every request as FastAPI's general handler does.

Twin routes on one app take the same endpoint and the real order body: one a
:class:`DirectBodyRoute`, one a :class:`StrictJsonRoute` whose route-wide dependency
FastAPI solves. Whatever is sent (any content type, any body, with or without the
caller's credentials), both answer with the same status and the same body, and the
dependency runs before validation on both.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wattx.api import direct_route
from wattx.api.app import check_direct_routes
from wattx.api.auth import authorize
from wattx.api.direct_route import DirectBodyRoute
from wattx.api.input import StrictJsonRoute
from wattx.api.problems import install_problem_handlers
from wattx.api.routers import orders
from wattx.api.schemas.market import OrderIn
from wattx.services.errors import AuthenticationError

calls: list[str] = []


async def gate(request: Request) -> None:
    """Stands for ``authorize``: refuses a caller without the header, records each call."""
    calls.append(request.url.path)
    if request.headers.get("x-caller") != "known":
        raise AuthenticationError("who are you")


async def echo(body: OrderIn, request: Request) -> Response:
    return Response(body.model_dump_json(), media_type="application/json", status_code=201)


def _twins() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    direct = APIRouter(route_class=DirectBodyRoute)
    direct.add_api_route("/direct", echo, methods=["POST"])
    general = APIRouter(route_class=StrictJsonRoute, dependencies=[Depends(gate)])
    general.add_api_route("/general", echo, methods=["POST"])
    app.include_router(direct)
    app.include_router(general)
    return app


@pytest.fixture
async def twins(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setattr(direct_route, "authorize", gate)
    transport = httpx.ASGITransport(app=_twins())
    async with httpx.AsyncClient(transport=transport, base_url="http://twins") as client:
        yield client


async def _assert_alike(
    client: httpx.AsyncClient, content: bytes, content_type: str | None, known: bool
) -> None:
    """Both twins answer alike, and the dependency ran on both or (a body refused before
    it) on neither."""
    headers = {"x-caller": "known"} if known else {}
    if content_type is not None:
        headers["content-type"] = content_type
    answers = []
    calls.clear()
    for path in ("/direct", "/general"):
        answer = await client.post(path, content=content, headers=headers)
        try:
            body: Any = answer.json()
        except ValueError:
            body = answer.text
        if isinstance(body, dict) and "instance" in body:
            body["instance"] = "(path)"
        answers.append((answer.status_code, body))
    assert answers[0] == answers[1]
    assert calls in ([], ["/direct", "/general"])


VALID = {"side": "sell", "qty_wh": 1_000, "limit_price": 100_000, "zone": "main"}

CASES: list[tuple[str, bytes, str | None]] = [
    ("valid", json.dumps(VALID).encode(), "application/json"),
    ("valid, charset", json.dumps(VALID).encode(), "application/json; charset=utf-8"),
    ("valid, +json", json.dumps(VALID).encode(), "application/vnd.wattx+json"),
    ("valid, upper case", json.dumps(VALID).encode(), "APPLICATION/JSON"),
    ("valid, no content type", json.dumps(VALID).encode(), None),
    ("valid, text", json.dumps(VALID).encode(), "text/plain"),
    ("empty", b"", "application/json"),
    ("empty, no content type", b"", None),
    ("not JSON", b"{side: sell", "application/json"),
    ("NaN", b'{"qty_wh": NaN}', "application/json"),
    ("huge number", b'{"qty_wh": 1e999}', "application/json"),
    ("not UTF-8", b'{"zone": "\xff\xfe"}', "application/json"),
    ("control character", b'{"zone": "ma\\u0000in"}', "application/json"),
    ("array", b"[1, 2]", "application/json"),
    ("string", b'"sell"', "application/json"),
    ("null", b"null", "application/json"),
    ("wrong types", json.dumps({**VALID, "qty_wh": "1000"}).encode(), "application/json"),
    ("missing field", json.dumps({"side": "sell"}).encode(), "application/json"),
    ("unknown field", json.dumps({**VALID, "colour": "green"}).encode(), "application/json"),
    ("deep", b"[" * 100_000 + b"]" * 100_000, "application/json"),
    ("form", b"side=sell&qty_wh=5", "application/x-www-form-urlencoded"),
]


@pytest.mark.parametrize("known", [True, False], ids=["known caller", "unknown caller"])
@pytest.mark.parametrize(
    ("content", "content_type"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_every_case_answered_as_fastapi_answers_it(
    twins: httpx.AsyncClient, content: bytes, content_type: str | None, known: bool
) -> None:
    await _assert_alike(twins, content, content_type, known)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
_orders = st.fixed_dictionaries(
    {},
    optional={
        "side": st.sampled_from(["buy", "sell", "hold"]) | _json_values,
        "qty_wh": st.integers(-5, 10**13) | _json_values,
        "zone": st.text(max_size=45),
        "limit_price": st.integers(-5, 10**13) | st.none(),
        "epoch_id": st.integers(-5, 10**13) | st.none(),
        "kind": st.sampled_from(["limit", "market", "other"]),
        "client_order_id": st.text(max_size=70) | st.none(),
        "extra": _json_values,
    },
)
_bodies = st.one_of(
    _orders.map(lambda order: json.dumps(order).encode()),
    _json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=60),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    content=_bodies,
    content_type=st.sampled_from([None, "application/json", "text/plain", "application/x+json"]),
    known=st.booleans(),
)
async def test_any_body_answered_as_fastapi_answers_it(
    twins: httpx.AsyncClient, content: bytes, content_type: str | None, known: bool
) -> None:
    await _assert_alike(twins, content, content_type, known)


async def _query(body: OrderIn, request: Request, limit: int = 5) -> Response:
    return Response()


async def _no_request(body: OrderIn) -> Response:
    return Response()


def _blocking(body: OrderIn, request: Request) -> Response:
    return Response()


async def _two_bodies(body: OrderIn, other: OrderIn, request: Request) -> Response:
    return Response()


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        (_query, "takes other parameters"),
        (_no_request, "does not take the Request"),
        (_blocking, "is not a coroutine function"),
        (_two_bodies, "does not take exactly one body model"),
    ],
)
def test_an_endpoint_of_another_shape_is_refused_when_the_route_is_made(
    endpoint: Any, reason: str
) -> None:
    router = APIRouter(route_class=DirectBodyRoute)
    with pytest.raises(TypeError, match=reason):
        router.add_api_route("/unfit", endpoint, methods=["POST"])


async def _audit(request: Request) -> None:
    return None


def test_another_route_wide_dependency_stops_the_app() -> None:
    app = FastAPI(dependencies=[Depends(authorize), Depends(_audit)])
    with pytest.raises(RuntimeError, match="_audit"):
        check_direct_routes(app)


def test_a_lax_content_type_stops_the_route_and_the_app() -> None:
    with pytest.raises(TypeError, match="without a JSON content type"):
        APIRouter(route_class=DirectBodyRoute).add_api_route(
            "/lax", echo, methods=["POST"], strict_content_type=False
        )
    with pytest.raises(RuntimeError, match="undecoded"):
        check_direct_routes(FastAPI(dependencies=[Depends(authorize)], strict_content_type=False))


def test_the_order_route_is_direct() -> None:
    route = next(r for r in orders.router.routes if getattr(r, "path", "") == "/api/v1/orders")
    assert isinstance(route, DirectBodyRoute)
