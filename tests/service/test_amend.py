"""Amending an order through the API: cancel + replacement, escrow moved in one step."""

from __future__ import annotations

import json

import pytest

from wattx.services.principal import Role

from .client import ApiClient, User
from .helpers import FLAT_ZONE, assert_problem

# A buy of q Wh at limit b locks c + ceil(c * 25 / 10,000) with c = ceil(q * b / 1000).
FEE_BPS = 25


def buy_escrow(qty_wh: int, limit_price: int) -> int:
    c = -(-qty_wh * limit_price // 1000)
    return c + -(-c * FEE_BPS // 10_000)


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


async def test_amend_price_crosses_and_trades(api: ApiClient, market: tuple[User, User]) -> None:
    seller, buyer = market
    assert api.state.market.fee_bps == FEE_BPS
    ask = await api.order(seller, side="sell", qty_wh=1_000, limit_price=120_000, zone="main")
    assert ask.status_code == 201, ask.text
    bid = await api.order(
        buyer, side="buy", qty_wh=500, limit_price=100_000, zone="main", client_order_id="b-1"
    )
    assert bid.status_code == 201, bid.text
    assert bid.json()["trades"] == []
    old_id = bid.json()["order"]["id"]

    last_event = api.state.events.last_id
    amended = await api.http.patch(
        f"/api/v1/orders/{old_id}", json={"limit_price": 200_000}, headers=buyer.headers
    )
    assert amended.status_code == 200, amended.text
    body = amended.json()
    assert body["replaces"] == old_id
    new = body["order"]
    assert new["id"] != old_id
    assert (new["qty_wh"], new["limit_price"], new["side"]) == (500, 200_000, "buy")
    assert new["client_order_id"] == "b-1"
    assert new["status"] == "filled"
    [trade] = body["trades"]
    assert trade["buy_order_id"] == new["id"]
    # The seller's order is not the buyer's to see (docs/api.md, "Who sees what").
    assert trade["sell_order_id"] is None
    assert trade["price"] == 120_000  # the resting order's price

    old = await api.http.get(f"/api/v1/orders/{old_id}", headers=buyer.headers)
    assert old.json()["status"] == "cancelled"
    assert old.json()["cancelled_wh"] == 500
    stored = await api.http.get(f"/api/v1/orders/{new['id']}", headers=buyer.headers)
    assert stored.json()["status"] == "filled"
    # The filled replacement holds nothing: everything not spent is free again.
    credit = (await api.wallet(buyer))["credit"]
    spent = trade["value"] + trade["wheeling_fee"] + trade["buyer_fee"]
    assert credit == {"free": 50_000_000 - spent, "locked": 0}
    events = await _events_since(api, buyer, last_event)
    assert ("order.cancelled", old_id) in events
    assert ("order.created", new["id"]) in events
    assert ("trade.executed", trade["id"]) in events
    assert ("book.updated", None) in events


async def _events_since(api: ApiClient, user: User, last_id: int) -> list[tuple[str, str | None]]:
    """(type, data id) of the events after ``last_id`` that ``user`` may see, until quiet."""
    found: list[tuple[str, str | None]] = []
    stream = api.state.events.stream(
        user_id=user.id, sees_everything=False, last_event_id=last_id, keepalive_s=0.5
    )
    async for chunk in stream:
        if chunk.startswith(": keep-alive"):
            break
        if chunk.startswith(":"):
            continue
        fields = dict(line.split(": ", 1) for line in chunk.strip().split("\n"))
        found.append((fields["event"], json.loads(fields["data"])["data"].get("id")))
    return found


async def test_amend_qty_down_releases_escrow(api: ApiClient, market: tuple[User, User]) -> None:
    _, buyer = market
    bid = await api.order(buyer, side="buy", qty_wh=2_000, limit_price=100_000, zone="main")
    assert bid.status_code == 201, bid.text
    assert (await api.wallet(buyer))["credit"]["locked"] == buy_escrow(2_000, 100_000)
    amended = await api.http.patch(
        f"/api/v1/orders/{bid.json()['order']['id']}", json={"qty_wh": 500}, headers=buyer.headers
    )
    assert amended.status_code == 200, amended.text
    new = amended.json()["order"]
    assert (new["qty_wh"], new["limit_price"], new["status"]) == (500, 100_000, "open")
    locked = buy_escrow(500, 100_000)
    assert (await api.wallet(buyer))["credit"] == {"free": 50_000_000 - locked, "locked": locked}
    book = (await api.http.get("/api/v1/markets/main/book", headers=buyer.headers)).json()
    assert book["bids"] == [{"price": 100_000, "qty_wh": 500, "orders": 1}]


async def test_amend_someone_elses_or_unknown_order_is_not_found(
    api: ApiClient, market: tuple[User, User]
) -> None:
    seller, buyer = market
    ask = await api.order(seller, side="sell", qty_wh=1_000, limit_price=120_000, zone="main")
    order_id = ask.json()["order"]["id"]
    foreign = await api.http.patch(
        f"/api/v1/orders/{order_id}", json={"qty_wh": 10}, headers=buyer.headers
    )
    assert_problem(foreign, 404, "order_not_found")
    unknown = await api.http.patch(
        "/api/v1/orders/unknown", json={"qty_wh": 10}, headers=seller.headers
    )
    assert_problem(unknown, 404, "order_not_found")
    stored = await api.http.get(f"/api/v1/orders/{order_id}", headers=seller.headers)
    assert (stored.json()["qty_wh"], stored.json()["status"]) == (1_000, "open")
    assert (await api.wallet(seller))["energy"] == {"free": 49_000, "locked": 1_000}


async def test_amend_beyond_free_balance_changes_nothing(
    api: ApiClient, market: tuple[User, User]
) -> None:
    seller, buyer = market
    ask = await api.order(seller, side="sell", qty_wh=40_000, limit_price=120_000, zone="main")
    order_id = ask.json()["order"]["id"]
    # 40,000 locked + 10,000 free: the replacement may reuse the first, not more.
    too_much = await api.http.patch(
        f"/api/v1/orders/{order_id}", json={"qty_wh": 50_001}, headers=seller.headers
    )
    assert_problem(too_much, 409, "insufficient_balance")
    assert (await api.wallet(seller))["energy"] == {"free": 10_000, "locked": 40_000}
    stored = await api.http.get(f"/api/v1/orders/{order_id}", headers=seller.headers)
    assert (stored.json()["qty_wh"], stored.json()["status"]) == (40_000, "open")
    orders = (await api.http.get("/api/v1/orders", headers=seller.headers)).json()["items"]
    assert [o["id"] for o in orders] == [order_id]
    book = (await api.http.get("/api/v1/markets/main/book", headers=buyer.headers)).json()
    assert book["asks"] == [{"price": 120_000, "qty_wh": 40_000, "orders": 1}]
    # Exactly all of it fits.
    everything = await api.http.patch(
        f"/api/v1/orders/{order_id}", json={"qty_wh": 50_000}, headers=seller.headers
    )
    assert everything.status_code == 200, everything.text
    assert (await api.wallet(seller))["energy"] == {"free": 0, "locked": 50_000}


async def test_amend_refusals(api: ApiClient, market: tuple[User, User]) -> None:
    seller, _ = market
    ask = await api.order(seller, side="sell", qty_wh=1_000, limit_price=120_000, zone="main")
    order_id = ask.json()["order"]["id"]
    url = f"/api/v1/orders/{order_id}"
    empty = await api.http.patch(url, json={}, headers=seller.headers)
    assert empty.status_code == 422, empty.text
    zero = await api.http.patch(url, json={"qty_wh": 0}, headers=seller.headers)
    assert zero.status_code == 422, zero.text
    outside = await api.http.patch(url, json={"limit_price": 400_000}, headers=seller.headers)
    assert_problem(outside, 422, "price_out_of_bounds")
    assert (await api.wallet(seller))["energy"] == {"free": 49_000, "locked": 1_000}
    cancelled = await api.http.delete(url, headers=seller.headers)
    assert cancelled.status_code == 200, cancelled.text
    final = await api.http.patch(url, json={"qty_wh": 10}, headers=seller.headers)
    assert_problem(final, 409, "order_not_open")
    assert (await api.wallet(seller))["energy"] == {"free": 50_000, "locked": 0}
