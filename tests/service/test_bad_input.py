"""Bad input: each case is a problem response and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from wattx.api.state import AppState
from wattx.services.principal import Role

from .client import ApiClient, User
from .helpers import FLAT_ZONE, assert_problem


@pytest.fixture
async def trader(api: ApiClient) -> User:
    op = await api.operator()
    assert (await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)).is_success
    user = await api.signup(Role.PROSUMER)
    await api.fund(user, credit=1_000_000, energy_wh=10_000)
    return user


async def _snapshot(api: ApiClient, user: User) -> tuple[Any, ...]:
    orders = (await api.http.get("/api/v1/orders", headers=user.headers)).json()["items"]
    book = (await api.http.get("/api/v1/markets/main/book", headers=user.headers)).json()
    return (await api.wallet(user), orders, book)


VALID = {"side": "sell", "qty_wh": 1_000, "limit_price": 100_000, "zone": "main"}

BAD_ORDERS: list[tuple[str, Any, int, str]] = [
    ("zero quantity", {**VALID, "qty_wh": 0}, 422, "validation_error"),
    ("negative quantity", {**VALID, "qty_wh": -5}, 422, "validation_error"),
    ("quantity as string", {**VALID, "qty_wh": "1000"}, 422, "validation_error"),
    ("quantity as float", {**VALID, "qty_wh": 10.5}, 422, "validation_error"),
    ("unknown side", {**VALID, "side": "hold"}, 422, "validation_error"),
    ("unknown field", {**VALID, "colour": "green"}, 422, "validation_error"),
    ("missing zone", {k: v for k, v in VALID.items() if k != "zone"}, 422, "validation_error"),
    ("sell below feed-in", {**VALID, "limit_price": 10_000}, 422, "price_out_of_bounds"),
    (
        "buy above retail",
        {**VALID, "side": "buy", "limit_price": 900_000},
        422,
        "price_out_of_bounds",
    ),
    (
        "limit order without price",
        {k: v for k, v in VALID.items() if k != "limit_price"},
        422,
        "price_out_of_bounds",
    ),
    ("unknown zone", {**VALID, "zone": "atlantis"}, 422, "unknown_zone"),
    ("past epoch", {**VALID, "epoch_id": 1}, 409, "gate_closed"),
    ("not an object", [1, 2, 3], 422, "validation_error"),
]


@pytest.mark.parametrize(
    ("case", "body", "status", "code"), BAD_ORDERS, ids=[c[0] for c in BAD_ORDERS]
)
async def test_bad_orders_are_problems_without_effect(
    api: ApiClient, trader: User, case: str, body: Any, status: int, code: str
) -> None:
    before = await _snapshot(api, trader)
    response = await api.http.post("/api/v1/orders", json=body, headers=trader.headers)
    assert_problem(response, status, code)
    assert await _snapshot(api, trader) == before, case


async def test_malformed_json_and_oversize_body(api: ApiClient, trader: User) -> None:
    before = await _snapshot(api, trader)
    headers = {**trader.headers, "Content-Type": "application/json"}
    malformed = await api.http.post("/api/v1/orders", content=b'{"side": "sell",', headers=headers)
    assert_problem(malformed, 422, "validation_error")
    huge = b'{"side": "sell", "zone": "' + b"x" * 100_000 + b'"}'
    oversize = await api.http.post("/api/v1/orders", content=huge, headers=headers)
    assert_problem(oversize, 413, "payload_too_large")

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(100):
            yield b" " * 1_000

    streamed = await api.http.post("/api/v1/orders", content=chunks(), headers=headers)
    assert_problem(streamed, 413, "payload_too_large")
    assert await _snapshot(api, trader) == before


@pytest.mark.parametrize(
    ("path", "depth"),
    [("/api/v1/orders", 30_000), ("/api/v1/orders/batch", 120_000), ("/api/v1/zones", 30_000)],
)
@pytest.mark.parametrize("signed_in", [True, False], ids=["signed in", "anonymous"])
async def test_deep_nesting_is_refused_before_it_is_decoded(
    api: ApiClient, trader: User, path: str, depth: int, signed_in: bool
) -> None:
    """Nesting the service's recursion limit (raised by the chain's libraries) does not
    stop: 240 KB of ``[`` to the batch route used to crash the whole process."""
    before = await _snapshot(api, trader)
    headers = {**(trader.headers if signed_in else {}), "Content-Type": "application/json"}
    deep = await api.http.post(path, content=b"[" * depth + b"]" * depth, headers=headers)
    assert_problem(deep, 422, "validation_error")
    assert deep.json()["errors"] == [
        {"loc": ["body", 0], "msg": "JSON decode error", "type": "json_invalid"}
    ]
    assert await _snapshot(api, trader) == before


async def test_unknown_ids_and_routes(api: ApiClient, trader: User) -> None:
    assert_problem(
        await api.http.get("/api/v1/orders/nope", headers=trader.headers), 404, "order_not_found"
    )
    assert_problem(
        await api.http.delete("/api/v1/orders/nope", headers=trader.headers), 404, "order_not_found"
    )
    assert_problem(
        await api.http.get("/api/v1/meters/nope", headers=trader.headers), 404, "meter_not_found"
    )
    assert_problem(
        await api.http.get("/api/v1/markets/nope/book", headers=trader.headers), 422, "unknown_zone"
    )
    assert_problem(await api.http.get("/api/v1/no-such-route"), 404, "not_found")
    assert_problem(await api.http.put("/healthz"), 405, "method_not_allowed")
    op = await api.operator()
    assert_problem(
        await api.http.post(
            "/api/v1/admin/users/nope/credit-deposits", json={"amount": 5}, headers=op.headers
        ),
        404,
        "user_not_found",
    )


async def test_someone_elses_order_is_invisible(api: ApiClient, trader: User) -> None:
    placed = await api.http.post("/api/v1/orders", json=VALID, headers=trader.headers)
    order_id = placed.json()["order"]["id"]
    other = await api.signup(Role.CONSUMER)
    before = await _snapshot(api, trader)
    assert_problem(
        await api.http.get(f"/api/v1/orders/{order_id}", headers=other.headers),
        404,
        "order_not_found",
    )
    assert_problem(
        await api.http.delete(f"/api/v1/orders/{order_id}", headers=other.headers),
        404,
        "order_not_found",
    )
    assert await _snapshot(api, trader) == before


async def test_bad_zone_definitions(api: ApiClient, state: AppState) -> None:
    op = await api.operator()
    inverted = {**FLAT_ZONE, "tariff": [{"start_hour": 0, "feed_in": 500, "retail": 100}]}
    assert_problem(
        await api.http.post("/api/v1/zones", json=inverted, headers=op.headers),
        422,
        "validation_error",
    )
    late_start = {**FLAT_ZONE, "tariff": [{"start_hour": 5, "feed_in": 1, "retail": 2}]}
    assert_problem(
        await api.http.post("/api/v1/zones", json=late_start, headers=op.headers),
        422,
        "validation_error",
    )
    assert await state.zones.list_zones() == []
