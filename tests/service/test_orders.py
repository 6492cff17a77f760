"""Orders through the API: escrow, idempotency, cancel, listing, books, epochs."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from wattx.services.principal import Role
from wattx.services.trading.epoch_clock import EpochClockTask

from .client import ApiClient, User
from .conftest import ManualClock
from .helpers import FLAT_ZONE, assert_problem


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


async def test_idempotency_key_replays_and_rejects_a_different_body(
    api: ApiClient, market: tuple[User, User]
) -> None:
    seller, _ = market
    headers = {**seller.headers, "Idempotency-Key": "k-1"}
    body = {"side": "sell", "qty_wh": 1_000, "limit_price": 90_000, "zone": "main"}
    first = await api.http.post("/api/v1/orders", json=body, headers=headers)
    again = await api.http.post("/api/v1/orders", json=body, headers=headers)
    assert first.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await api.http.post("/api/v1/orders", json={**body, "qty_wh": 2_000}, headers=headers)
    assert_problem(other, 409, "idempotency_key_reused")
    listed = await api.http.get("/api/v1/orders", headers=seller.headers)
    assert len(listed.json()["items"]) == 1
    assert (await api.wallet(seller))["energy"] == {"free": 49_000, "locked": 1_000}


@pytest.mark.parametrize("key", ["", "k" * 201])
async def test_an_idempotency_key_out_of_its_length_is_refused_as_the_batch_route_refuses_it(
    api: ApiClient, market: tuple[User, User], key: str
) -> None:
    # The order route reads the header itself (no FastAPI parameter): the same 422 as the
    # batch route's parameter gives, and nothing is stored.
    seller, _ = market
    headers = {**seller.headers, "Idempotency-Key": key}
    order = {"side": "sell", "qty_wh": 1_000, "limit_price": 90_000, "zone": "main"}
    single = await api.http.post("/api/v1/orders", json=order, headers=headers)
    batch = await api.http.post("/api/v1/orders/batch", json={"orders": [order]}, headers=headers)
    assert_problem(single, 422, "validation_error")
    assert_problem(batch, 422, "validation_error")
    (error,) = single.json()["errors"]
    assert error["loc"] == ["header", "Idempotency-Key"]
    assert single.json()["errors"] == batch.json()["errors"]
    assert (await api.http.get("/api/v1/orders", headers=seller.headers)).json()["items"] == []
    assert (await api.wallet(seller))["energy"] == {"free": 50_000, "locked": 0}


async def test_client_order_id_makes_submission_idempotent(
    api: ApiClient, market: tuple[User, User]
) -> None:
    seller, _ = market
    body = {
        "side": "sell",
        "qty_wh": 500,
        "limit_price": 90_000,
        "zone": "main",
        "client_order_id": "c-1",
    }
    first = await api.order(seller, **body)
    again = await api.order(seller, **body)
    assert first.status_code == 201
    assert again.json()["order"]["id"] == first.json()["order"]["id"]
    clash = await api.order(seller, **{**body, "limit_price": 95_000})
    assert_problem(clash, 409, "idempotency_key_reused")
    with_key = await api.http.post(
        "/api/v1/orders",
        json={**body, "limit_price": 95_000},
        headers={**seller.headers, "Idempotency-Key": "fresh"},
    )
    assert_problem(with_key, 409, "duplicate_client_order_id")


async def test_cancel_releases_escrow_and_others_cannot_cancel(
    api: ApiClient, market: tuple[User, User]
) -> None:
    seller, buyer = market
    buy = await api.order(buyer, side="buy", qty_wh=1_000, limit_price=100_000, zone="main")
    assert buy.status_code == 201
    order_id = buy.json()["order"]["id"]
    locked = (await api.wallet(buyer))["credit"]["locked"]
    assert locked > 100_000  # value plus wheeling and fee headroom
    foreign = await api.http.delete(f"/api/v1/orders/{order_id}", headers=seller.headers)
    assert_problem(foreign, 404, "order_not_found")
    assert (await api.wallet(buyer))["credit"]["locked"] == locked
    cancelled = await api.http.delete(f"/api/v1/orders/{order_id}", headers=buyer.headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert (await api.wallet(buyer))["credit"] == {"free": 50_000_000, "locked": 0}
    twice = await api.http.delete(f"/api/v1/orders/{order_id}", headers=buyer.headers)
    assert_problem(twice, 409, "order_not_open")


async def test_insufficient_balance_changes_nothing(
    api: ApiClient, market: tuple[User, User]
) -> None:
    seller, _ = market
    response = await api.order(seller, side="sell", qty_wh=60_000, limit_price=90_000, zone="main")
    assert_problem(response, 409, "insufficient_balance")
    assert (await api.wallet(seller))["energy"] == {"free": 50_000, "locked": 0}
    book = await api.http.get("/api/v1/markets/main/book", headers=seller.headers)
    assert book.json()["asks"] == []


async def test_book_orders_listing_and_pagination(
    api: ApiClient, market: tuple[User, User]
) -> None:
    seller, buyer = market
    for price in (90_000, 95_000, 95_000):
        r = await api.order(seller, side="sell", qty_wh=1_000, limit_price=price, zone="main")
        assert r.status_code == 201
    book = (await api.http.get("/api/v1/markets/main/book", headers=buyer.headers)).json()
    assert book["asks"] == [
        {"price": 90_000, "qty_wh": 1_000, "orders": 1},
        {"price": 95_000, "qty_wh": 2_000, "orders": 2},
    ]
    page1 = (await api.http.get("/api/v1/orders?limit=2", headers=seller.headers)).json()
    assert len(page1["items"]) == 2
    assert page1["page"]["next_offset"] == 2
    page2 = (await api.http.get("/api/v1/orders?limit=2&offset=2", headers=seller.headers)).json()
    assert len(page2["items"]) == 1
    assert page2["page"]["next_offset"] is None
    assert (await api.http.get("/api/v1/orders", headers=buyer.headers)).json()["items"] == []
    op = await api.operator()
    everyone = await api.http.get(f"/api/v1/orders?owner={seller.id}", headers=op.headers)
    assert len(everyone.json()["items"]) == 3
    filtered = await api.http.get("/api/v1/orders?side=buy&status=open", headers=seller.headers)
    assert filtered.json()["items"] == []


async def test_orders_and_trades_are_keyed_in_the_order_they_were_made(
    api: ApiClient, market: tuple[User, User]
) -> None:
    # docs/api.md, "Orders": version-7 UUIDs, which sort in time order.
    seller, buyer = market
    ask = await api.order(seller, side="sell", qty_wh=1_000, limit_price=120_000, zone="main")
    bid = await api.order(buyer, side="buy", qty_wh=500, limit_price=100_000, zone="main")
    assert ask.status_code == bid.status_code == 201, (ask.text, bid.text)
    bid_id = bid.json()["order"]["id"]
    amended = await api.http.patch(
        f"/api/v1/orders/{bid_id}", json={"limit_price": 200_000}, headers=buyer.headers
    )
    assert amended.status_code == 200, amended.text
    replacement, [trade] = amended.json()["order"]["id"], amended.json()["trades"]
    made = [ask.json()["order"]["id"], bid_id, replacement, trade["id"]]
    assert made == sorted(made)
    for text in made:
        assert uuid.UUID(hex=text).version == 7
        assert uuid.UUID(hex=text).hex == text


async def test_markets_reference_price_and_rates(api: ApiClient, market: tuple[User, User]) -> None:
    _, buyer = market
    markets = (await api.http.get("/api/v1/markets", headers=buyer.headers)).json()
    assert markets["markets"][0]["zone"] == "main"
    assert markets["markets"][0]["mechanism"] == "continuous"
    assert all(e["open_for_orders"] for e in markets["markets"][0]["upcoming"])
    ref = (await api.http.get("/api/v1/markets/main/reference-price", headers=buyer.headers)).json()
    assert ref["feed_in"] <= ref["price"] <= ref["retail"] * 2
    rates = (await api.http.get("/api/v1/zones/rates", headers=buyer.headers)).json()
    assert rates["rates"] == [
        {
            "seller_zone": "main",
            "buyer_zone": "main",
            "wheeling_per_kwh": 5_000,
            "loss_bps": 100,
        }
    ]


async def test_call_auction_clears_at_forced_gate_closure(
    api: ApiClient, market: tuple[User, User]
) -> None:
    seller, buyer = market
    op = await api.operator()
    auction_zone = {**FLAT_ZONE, "id": "campus", "name": "Campus", "mechanism": "call_auction"}
    assert (await api.http.post("/api/v1/zones", json=auction_zone, headers=op.headers)).is_success
    sell = await api.order(seller, side="sell", qty_wh=2_000, limit_price=80_000, zone="campus")
    buy = await api.order(buyer, side="buy", qty_wh=1_000, limit_price=200_000, zone="campus")
    assert sell.json()["trades"] == []
    assert buy.json()["trades"] == []
    epoch_id = sell.json()["order"]["epoch_id"]
    closed = await api.http.post(f"/api/v1/epochs/{epoch_id}/close", headers=op.headers)
    assert closed.status_code == 200, closed.text
    result = closed.json()
    assert len(result["trades"]) == 1
    assert uuid.UUID(hex=result["trades"][0]["id"]).version == 7  # as a continuous trade's
    assert result["clearing_prices"]["campus"] is not None
    assert result["expired"] == 1  # the seller's unsold remainder
    assert (await api.wallet(seller))["energy"]["locked"] == 0
    assert (await api.wallet(buyer))["credit"]["locked"] == 0
    late = await api.order(
        buyer, side="buy", qty_wh=10, limit_price=200_000, zone="campus", epoch_id=epoch_id
    )
    assert_problem(late, 409, "gate_closed")
    epochs = (await api.http.get("/api/v1/epochs", headers=op.headers)).json()
    assert epochs["closed"][0]["id"] == epoch_id
    assert epochs["closed"][0]["forced"] is True
    for user in (seller, buyer):
        trades = (await api.http.get("/api/v1/trades", headers=user.headers)).json()["items"]
        assert [t["id"] for t in trades] == [result["trades"][0]["id"]]


async def test_epoch_clock_expires_orders_on_its_own(
    api: ApiClient, market: tuple[User, User], clock: ManualClock
) -> None:
    _, buyer = market
    buy = await api.order(buyer, side="buy", qty_wh=1_000, limit_price=100_000, zone="main")
    order_id = buy.json()["order"]["id"]
    gate = api.state.market.epoch_info(buy.json()["order"]["epoch_id"]).gate_closure
    clock.current = gate
    task = EpochClockTask(api.state.market, tick_s=0.01)
    task.start()
    try:
        for _ in range(200):
            order = (await api.http.get(f"/api/v1/orders/{order_id}", headers=buyer.headers)).json()
            if order["status"] == "expired":
                break
            await asyncio.sleep(0.01)
    finally:
        await task.stop()
    assert order["status"] == "expired"
    assert (await api.wallet(buyer))["credit"] == {"free": 50_000_000, "locked": 0}


async def test_meters_register_activate_and_privacy(api: ApiClient) -> None:
    op = await api.operator()
    await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)
    owner = await api.signup(Role.PROSUMER)
    other = await api.signup(Role.PROSUMER)
    key_b64 = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    created = await api.http.post(
        "/api/v1/meters",
        json={"serial": "SN-9", "zone_id": "main", "rated_capacity_w": 4000, "public_key": key_b64},
        headers=owner.headers,
    )
    assert created.status_code == 201, created.text
    meter = created.json()
    assert meter["status"] == "pending"
    assert meter["public_key"] == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    hidden = await api.http.get(f"/api/v1/meters/{meter['id']}", headers=other.headers)
    assert_problem(hidden, 404, "meter_not_found")
    active = await api.http.post(f"/api/v1/meters/{meter['id']}/activate", headers=op.headers)
    assert active.json()["status"] == "active"
    inactive = await api.http.post(f"/api/v1/meters/{meter['id']}/deactivate", headers=op.headers)
    assert inactive.json()["status"] == "inactive"
    duplicate = await api.http.post(
        "/api/v1/meters",
        json={"serial": "SN-9", "zone_id": "main", "rated_capacity_w": 1, "public_key": key_b64},
        headers=other.headers,
    )
    assert_problem(duplicate, 409, "meter_serial_taken")
    bad_key = await api.http.post(
        "/api/v1/meters",
        json={"serial": "SN-10", "zone_id": "main", "rated_capacity_w": 1, "public_key": "abcd"},
        headers=other.headers,
    )
    assert_problem(bad_key, 422, "invalid_public_key")
    mine = (await api.http.get("/api/v1/meters", headers=other.headers)).json()
    assert mine["items"] == []
