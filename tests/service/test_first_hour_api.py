"""Rough edges a newcomer met in the API: the default epoch after an early close, the
order of the checks, the epoch's trade count, the last page, one trade, the grant's
answer and what a 401 says."""

from __future__ import annotations

import asyncio
import re

from wattx.api.state import AppState
from wattx.bus.events import Event, EventType
from wattx.services.principal import Role

from .client import ApiClient
from .conftest import ManualClock
from .helpers import FLAT_ZONE, assert_problem


async def _zone(api: ApiClient) -> None:
    op = await api.operator()
    zone = {**FLAT_ZONE, "mechanism": "continuous"}
    r = await api.http.post("/api/v1/zones", json=zone, headers=op.headers)
    assert r.status_code == 201, r.text


async def test_orders_book_and_reference_price_skip_an_epoch_the_operator_closed(
    api: ApiClient, state: AppState
) -> None:
    await _zone(api)
    op = await api.operator()
    buyer = await api.signup(Role.CONSUMER)
    await api.fund(buyer, credit=10_000_000)
    first_open = state.market.schedule.first_open_epoch(state.clock.now())
    closed = await api.http.post(f"/api/v1/epochs/{first_open}/close", headers=op.headers)
    assert closed.status_code == 200, closed.text

    order = await api.order(buyer, side="buy", qty_wh=100, limit_price=100_000, zone="main")
    assert order.status_code == 201, order.text
    assert order.json()["order"]["epoch_id"] == first_open + 1
    book = await api.http.get("/api/v1/markets/main/book", headers=buyer.headers)
    assert book.json()["epoch_id"] == first_open + 1
    price = await api.http.get("/api/v1/markets/main/reference-price", headers=buyer.headers)
    assert price.json()["epoch_id"] == first_open + 1


async def test_a_price_out_of_bounds_is_reported_before_an_empty_balance(api: ApiClient) -> None:
    await _zone(api)
    broke = await api.signup(Role.CONSUMER)
    r = await api.order(broke, side="buy", qty_wh=100, limit_price=999_999, zone="main")
    assert_problem(r, 422, "price_out_of_bounds")
    within = await api.order(broke, side="buy", qty_wh=100, limit_price=100_000, zone="main")
    assert_problem(within, 409, "insufficient_balance")


async def test_epoch_cleared_counts_the_continuous_trades_of_the_epoch(
    api: ApiClient, state: AppState
) -> None:
    await _zone(api)
    op = await api.operator()
    seller = await api.signup(Role.PROSUMER)
    buyer = await api.signup(Role.CONSUMER)
    await api.fund(seller, energy_wh=1_000)
    await api.fund(buyer, credit=10_000_000)
    sell = await api.order(seller, side="sell", qty_wh=500, limit_price=100_000, zone="main")
    assert sell.status_code == 201, sell.text
    buy = await api.order(buyer, side="buy", qty_wh=500, limit_price=200_000, zone="main")
    assert len(buy.json()["trades"]) == 1
    epoch_id = buy.json()["order"]["epoch_id"]

    cleared: list[Event] = []
    subscribed = asyncio.Event()

    async def listen() -> None:
        stream = state.bus.subscribe()
        subscribed.set()
        async for event in stream:
            if event.type is EventType.EPOCH_CLEARED:
                cleared.append(event)
                return

    listener = asyncio.create_task(listen())
    await subscribed.wait()
    await asyncio.sleep(0.05)
    closed = await api.http.post(f"/api/v1/epochs/{epoch_id}/close", headers=op.headers)
    assert closed.status_code == 200, closed.text
    await asyncio.wait_for(listener, timeout=5)
    assert cleared[0].data["trades"] == 1
    epochs = await api.http.get("/api/v1/epochs", headers=op.headers)
    (row,) = [e for e in epochs.json()["closed"] if e["id"] == epoch_id]
    assert row["trade_count"] == 1


async def test_next_offset_is_null_on_a_last_page_that_is_full(api: ApiClient) -> None:
    await _zone(api)
    buyer = await api.signup(Role.CONSUMER)
    await api.fund(buyer, credit=10_000_000)
    for _ in range(2):
        r = await api.order(buyer, side="buy", qty_wh=10, limit_price=100_000, zone="main")
        assert r.status_code == 201, r.text
    first = (await api.http.get("/api/v1/orders?limit=1", headers=buyer.headers)).json()
    assert first["page"]["next_offset"] == 1
    last = (await api.http.get("/api/v1/orders?limit=1&offset=1", headers=buyer.headers)).json()
    assert len(last["items"]) == 1
    assert last["page"]["next_offset"] is None
    whole = (await api.http.get("/api/v1/orders?limit=2", headers=buyer.headers)).json()
    assert whole["page"]["next_offset"] is None


async def test_one_trade_for_its_parties_without_the_other_party_and_for_oversight(
    api: ApiClient,
) -> None:
    await _zone(api)
    op = await api.operator()
    seller = await api.signup(Role.PROSUMER)
    buyer = await api.signup(Role.CONSUMER)
    other = await api.signup(Role.CONSUMER)
    auditor = await api.signup(Role.AUDITOR)
    await api.fund(seller, energy_wh=1_000)
    await api.fund(buyer, credit=10_000_000)
    await api.order(seller, side="sell", qty_wh=500, limit_price=100_000, zone="main")
    buy = await api.order(buyer, side="buy", qty_wh=500, limit_price=200_000, zone="main")
    trade_id = buy.json()["trades"][0]["id"]

    as_buyer = await api.http.get(f"/api/v1/trades/{trade_id}", headers=buyer.headers)
    assert as_buyer.status_code == 200, as_buyer.text
    assert as_buyer.json()["buyer"] == buyer.id
    assert as_buyer.json()["seller"] is None
    as_seller = (await api.http.get(f"/api/v1/trades/{trade_id}", headers=seller.headers)).json()
    assert (as_seller["buyer"], as_seller["seller"]) == (None, seller.id)
    for overseer in (op, auditor):
        seen = (await api.http.get(f"/api/v1/trades/{trade_id}", headers=overseer.headers)).json()
        assert (seen["buyer"], seen["seller"], seen["qty_wh"]) == (buyer.id, seller.id, 500)
    stranger = await api.http.get(f"/api/v1/trades/{trade_id}", headers=other.headers)
    assert_problem(stranger, 404, "trade_not_found")
    missing = await api.http.get("/api/v1/trades/nope", headers=op.headers)
    assert_problem(missing, 404, "trade_not_found")
    anonymous = await api.http.get(f"/api/v1/trades/{trade_id}")
    assert_problem(anonymous, 401, "unauthenticated")


async def test_the_energy_grant_answer_shows_the_chain_like_the_wallet(api: ApiClient) -> None:
    op = await api.operator()
    seller = await api.signup(Role.PROSUMER)
    await api.fund(seller, credit=1_000)
    granted = await api.http.post(
        f"/api/v1/admin/users/{seller.id}/energy-grants", json={"qty_wh": 10}, headers=op.headers
    )
    assert granted.status_code == 200, granted.text
    wallet = await api.wallet(seller)
    assert wallet["chain"] is not None
    assert granted.json()["chain"] == wallet["chain"]


async def test_a_missing_token_says_how_to_get_one(api: ApiClient, clock: ManualClock) -> None:
    r = await api.http.get("/api/v1/zones", headers={"Authorization": "Bearer "})
    assert_problem(r, 401, "unauthenticated")
    detail = r.json()["detail"]
    assert "POST /api/v1/auth/login" in detail
    assert "Authorization: Bearer" in detail


async def test_docs_load_only_local_assets_that_the_service_serves(api: ApiClient) -> None:
    page = await api.http.get("/docs")
    assert page.status_code == 200, page.text
    assert "http" not in page.headers["content-security-policy"]
    urls = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
    urls += re.findall(r"""url: ?['"]([^'"]+)['"]""", page.text)
    assert any(u.endswith("swagger-ui-bundle.js") for u in urls), urls
    for url in urls:
        assert url.startswith("/"), f"{url} is not served by wattx"
        loaded = await api.http.get(url)
        assert loaded.status_code == 200, url
        assert loaded.content, url


async def test_the_demo_says_each_hour_what_traded_and_at_what_prices(
    api: ApiClient, state: AppState
) -> None:
    from wattx.cli.simulate import _DemoSummary

    await _zone(api)
    seller = await api.signup(Role.PROSUMER)
    buyer = await api.signup(Role.CONSUMER)
    await api.fund(seller, energy_wh=1_000)
    await api.fund(buyer, credit=10_000_000)
    await api.order(seller, side="sell", qty_wh=500, limit_price=100_000, zone="main")
    buy = await api.order(buyer, side="buy", qty_wh=500, limit_price=200_000, zone="main")
    epoch_id = buy.json()["order"]["epoch_id"]
    schedule = state.market.schedule
    summary = _DemoSummary(schedule, epoch_id, "main")
    per_hour = 3_600 // schedule.length_s
    assert summary.due(per_hour)
    assert not summary.due(1)
    line = await summary.line(per_hour, state)
    assert "1 trades, 500 Wh, 0.100000-0.100000 per kWh" in line
    assert "epoch settlements: none yet" in line
    quiet_hour = await _DemoSummary(schedule, epoch_id + per_hour, "main").line(per_hour, state)
    assert "0 trades, 0 Wh, no prices" in quiet_hour
