"""POST /orders/batch: many orders, one transaction, one answer per order in order.

Every test runs on SQLite and on PostgreSQL (the ``database_url`` fixture).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from wattx.api.schemas.market import ORDER_BATCH_LIMIT, ORDER_BATCH_MAX_BYTES
from wattx.domain import Side
from wattx.market import escrow_required
from wattx.services.principal import Role
from wattx.services.trading import market as market_module

from .client import ApiClient, User
from .helpers import FLAT_ZONE, assert_problem, writer_group_sizes

BATCH = "/api/v1/orders/batch"


@pytest.fixture
async def market(api: ApiClient) -> tuple[User, User]:
    op = await api.operator()
    created = await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)
    assert created.status_code == 201, created.text
    seller = await api.signup(Role.PROSUMER)
    buyer = await api.signup(Role.CONSUMER)
    await api.fund(seller, energy_wh=50_000)
    await api.fund(buyer, credit=50_000_000)
    return seller, buyer


def _sell(qty_wh: int, price: int, **extra: Any) -> dict[str, Any]:
    return {"side": "sell", "qty_wh": qty_wh, "limit_price": price, "zone": "main", **extra}


def _buy(qty_wh: int, price: int, **extra: Any) -> dict[str, Any]:
    return {"side": "buy", "qty_wh": qty_wh, "limit_price": price, "zone": "main", **extra}


async def _post(api: ApiClient, user: User, orders: list[dict[str, Any]], **headers: str) -> Any:
    response = await api.http.post(
        BATCH, json={"orders": orders}, headers={**user.headers, **headers}
    )
    assert response.status_code in (201, 207), response.text
    body = response.json()
    # 201: every order placed or replayed; 207: some refused.
    assert response.status_code == (207 if body["refused"] else 201), response.text
    return body


async def test_a_batch_is_placed_in_order_in_one_transaction(
    api: ApiClient, market: tuple[User, User], monkeypatch: pytest.MonkeyPatch
) -> None:
    seller, _ = market
    opened = writer_group_sizes(monkeypatch, api.state.market)
    body = await _post(api, seller, [_sell(100, 100_000 + i) for i in range(50)])
    assert opened == [50]
    assert (body["placed"], body["replayed"], body["refused"]) == (50, 0, 0)
    results = body["results"]
    assert [r["status"] for r in results] == [201] * 50
    assert [r["order"]["limit_price"] for r in results] == [100_000 + i for i in range(50)]
    seqs = [r["order"]["seq"] for r in results]
    assert seqs == sorted(seqs)
    assert all(r["problem"] is None and r["trades"] == [] for r in results)
    assert (await api.wallet(seller))["energy"] == {"free": 45_000, "locked": 5_000}
    listed = await api.http.get("/api/v1/orders?limit=100", headers=seller.headers)
    assert len(listed.json()["items"]) == 50


async def test_orders_of_a_batch_trade_with_the_book(
    api: ApiClient, market: tuple[User, User]
) -> None:
    seller, buyer = market
    resting = await api.order(seller, **_sell(1_000, 90_000))
    assert resting.status_code == 201
    # The buyer's first order takes part of the resting sell; the second rests.
    body = await _post(api, buyer, [_buy(400, 120_000), _buy(200, 50_000)])
    first, second = body["results"]
    (trade,) = first["trades"]
    assert trade["price"] == 90_000
    assert trade["delivered_wh"] == 400
    # The caller sees its own order id and not the counterparty's.
    assert trade["buy_order_id"] == first["order"]["id"]
    assert trade["sell_order_id"] is None
    assert first["order"]["status"] == "filled"
    assert second["order"]["status"] == "open"
    assert second["trades"] == []
    wallet = await api.wallet(buyer)
    paid = trade["value"] + trade["buyer_fee"] + trade["wheeling_fee"]
    second_escrow = escrow_required(Side.BUY, 200, 50_000, api.state.market.fee_bps)
    assert wallet["credit"] == {
        "free": 50_000_000 - paid - second_escrow,
        "locked": second_escrow,
    }


async def test_an_order_refused_by_a_rule_is_answered_in_its_place_and_changes_nothing(
    api: ApiClient, market: tuple[User, User]
) -> None:
    seller, _ = market
    body = await _post(
        api,
        seller,
        [
            _sell(1_000, 100_000),
            _sell(1_000, 10**12),  # above the zone's price bounds
            _sell(60_000, 100_000),  # more energy than is free
            {**_sell(1_000, 100_000), "zone": "nowhere"},
            _sell(2_000, 100_000),
        ],
    )
    assert (body["placed"], body["replayed"], body["refused"]) == (2, 0, 3)
    statuses = [r["status"] for r in body["results"]]
    assert statuses == [201, 422, 409, 422, 201]
    codes = [r["problem"] and r["problem"]["code"] for r in body["results"]]
    assert codes == [None, "price_out_of_bounds", "insufficient_balance", "unknown_zone", None]
    problem = body["results"][2]["problem"]
    assert problem["type"] == "urn:wattx:problem:insufficient_balance"
    assert problem["instance"] == BATCH
    assert problem["context"] == {"asset": "energy", "free": 49_000, "required": 60_000}
    assert body["results"][1]["order"] is None
    assert (await api.wallet(seller))["energy"] == {"free": 47_000, "locked": 3_000}


async def test_idempotency_key_covers_each_order_by_its_index(
    api: ApiClient, market: tuple[User, User]
) -> None:
    seller, _ = market
    orders = [_sell(100, 100_000), _sell(200, 100_000)]
    first = await _post(api, seller, orders, **{"Idempotency-Key": "b-1"})
    again = await _post(api, seller, orders, **{"Idempotency-Key": "b-1"})
    assert [r["status"] for r in first["results"]] == [201, 201]
    # A replay answers what the first request answered, marked as a replay.
    assert [r["status"] for r in again["results"]] == [201, 201]
    assert [r["replayed"] for r in again["results"]] == [True, True]
    assert [r["order"] for r in again["results"]] == [r["order"] for r in first["results"]]
    assert (again["placed"], again["replayed"]) == (0, 2)
    # Same key, the second order changed: that order is refused, the first replays.
    changed = await _post(
        api, seller, [orders[0], _sell(300, 100_000)], **{"Idempotency-Key": "b-1"}
    )
    assert [r["status"] for r in changed["results"]] == [201, 409]
    assert [r["replayed"] for r in changed["results"]] == [True, False]
    assert (changed["placed"], changed["replayed"], changed["refused"]) == (0, 1, 1)
    assert changed["results"][1]["problem"]["code"] == "idempotency_key_reused"
    # The key of order i is "{key}#{i}": a single submission with that key replays it.
    single = await api.http.post(
        "/api/v1/orders", json=orders[1], headers={**seller.headers, "Idempotency-Key": "b-1#1"}
    )
    assert single.status_code == 201
    assert single.headers["Idempotent-Replayed"] == "true"
    assert single.json()["order"] == first["results"][1]["order"]
    assert (await api.wallet(seller))["energy"] == {"free": 49_700, "locked": 300}


async def test_client_order_ids_are_idempotent_within_and_across_batches(
    api: ApiClient, market: tuple[User, User]
) -> None:
    seller, _ = market
    a = _sell(100, 100_000, client_order_id="a")
    body = await _post(api, seller, [a, a, {**a, "qty_wh": 150}])
    assert [r["status"] for r in body["results"]] == [201, 201, 409]
    assert [r["replayed"] for r in body["results"]] == [False, True, False]
    assert body["results"][1]["order"]["id"] == body["results"][0]["order"]["id"]
    assert body["results"][2]["problem"]["code"] == "idempotency_key_reused"
    later = await _post(api, seller, [_sell(50, 100_000, client_order_id="b"), a])
    assert [r["replayed"] for r in later["results"]] == [False, True]
    assert (later["placed"], later["replayed"]) == (1, 1)
    assert (await api.wallet(seller))["energy"] == {"free": 49_850, "locked": 150}


@pytest.mark.parametrize(
    "orders",
    [
        [],
        [_sell(100, 100_000), {**_sell(100, 100_000), "qty_wh": 0}],
        [_sell(100, 100_000), {**_sell(100, 100_000), "colour": "green"}],
        [_sell(1, 100_000)] * (ORDER_BATCH_LIMIT + 1),
    ],
    ids=["empty", "zero-quantity", "unknown-field", "over-the-limit"],
)
async def test_a_body_off_the_schema_refuses_the_whole_batch(
    api: ApiClient, market: tuple[User, User], orders: list[dict[str, Any]]
) -> None:
    seller, _ = market
    response = await api.http.post(BATCH, json={"orders": orders}, headers=seller.headers)
    assert_problem(response, 422, "validation_error")
    assert (await api.wallet(seller))["energy"] == {"free": 50_000, "locked": 0}
    listed = await api.http.get("/api/v1/orders", headers=seller.headers)
    assert listed.json()["items"] == []


async def test_the_batch_route_has_its_own_body_limit(
    api: ApiClient, market: tuple[User, User]
) -> None:
    seller, _ = market
    # Room for the limit's worth of orders, above the 64 KiB of other routes ...
    full = [_sell(1, 100_000, client_order_id=f"order-number-{i:06d}") for i in range(1_000)]
    body = await _post(api, seller, full)
    assert body["placed"] == ORDER_BATCH_LIMIT
    # ... and a 413 above its own.
    padded = {"orders": [_sell(1, 100_000)], "pad": "x" * ORDER_BATCH_MAX_BYTES}
    response = await api.http.post(BATCH, json=padded, headers=seller.headers)
    assert_problem(response, 413, "payload_too_large")
    other = await api.http.post(
        "/api/v1/orders", json={**_sell(1, 100_000), "pad": "x" * 70_000}, headers=seller.headers
    )
    assert_problem(other, 413, "payload_too_large")


async def test_who_may_send_a_batch(api: ApiClient, market: tuple[User, User]) -> None:
    pending = await api.signup(Role.PROSUMER, admit=False)
    response = await api.http.post(
        BATCH, json={"orders": [_sell(1, 100_000)]}, headers=pending.headers
    )
    assert_problem(response, 403, "not_admitted")
    op = await api.operator()
    response = await api.http.post(BATCH, json={"orders": [_sell(1, 100_000)]}, headers=op.headers)
    assert_problem(response, 403, "forbidden")
    response = await api.http.post(BATCH, json={"orders": [_sell(1, 100_000)]})
    assert response.status_code == 401


async def test_a_failed_commit_fails_the_whole_batch_and_leaves_no_trace(
    api: ApiClient, market: tuple[User, User], monkeypatch: pytest.MonkeyPatch
) -> None:
    seller, buyer = market
    kept = await api.order(seller, **_sell(1_000, 90_000))
    assert kept.status_code == 201
    real = market_module.EngineChanges.add
    calls: list[int] = []

    async def failing_second(changes: market_module.EngineChanges, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionError("the database went away")
        await real(changes, **kwargs)

    monkeypatch.setattr(market_module.EngineChanges, "add", failing_second)
    response = await api.http.post(
        BATCH, json={"orders": [_buy(300, 200_000), _buy(300, 200_000)]}, headers=buyer.headers
    )
    assert_problem(response, 503, "storage_unavailable")
    monkeypatch.setattr(market_module.EngineChanges, "add", real)
    assert [o.id for o in api.state.market.open_orders()] == [kept.json()["order"]["id"]]
    assert (await api.wallet(buyer))["credit"] == {"free": 50_000_000, "locked": 0}
    assert (await api.http.get("/api/v1/trades", headers=buyer.headers)).json()["items"] == []
    again = await _post(api, buyer, [_buy(300, 200_000)])
    assert again["results"][0]["trades"][0]["delivered_wh"] == 300


def test_the_documented_limits_are_the_service_limits() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    section = doc.split("### Batches", 1)[1].split("\n## ", 1)[0]
    assert f"**{ORDER_BATCH_LIMIT:,}** orders per request" in section
    assert f"**{ORDER_BATCH_MAX_BYTES // 1024} KiB**" in section


async def test_a_batch_tells_watchers_of_each_book_once_after_its_orders(
    api: ApiClient, market: tuple[User, User]
) -> None:
    seller, _ = market
    stream = api.state.bus.subscribe()
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)  # the subscription is registered once the stream waits
    sent = datetime.now(UTC)
    placed = await _post(api, seller, [_sell(100, 90_000 + i) for i in range(3)])
    answered = datetime.now(UTC)
    assert placed["placed"] == 3
    seen = [await asyncio.wait_for(waiting, timeout=5)]
    with contextlib.suppress(TimeoutError):
        while True:
            seen.append(await asyncio.wait_for(anext(stream), timeout=0.5))
    assert [(e.type.value, e.data.get("zone")) for e in seen] == [
        ("order.created", "main"),
        ("order.created", "main"),
        ("order.created", "main"),
        ("book.updated", "main"),
    ]
    # Told at once, after the commit: one time for all of them.
    (told,) = {e.at for e in seen}
    assert sent <= told <= answered
