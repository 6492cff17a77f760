"""Zone rates through the API: every pair's rate is the governed relation rate, shown and
used for matching; no route lets the operator override one (a change is a proposal)."""

from __future__ import annotations

from typing import Any

import pytest

from wattx.api.state import AppState
from wattx.services.principal import Role

from .client import ApiClient, User

TARIFF = [{"start_hour": 0, "feed_in": 50_000, "retail": 300_000}]
# Two zones 2 km apart and not neighbours: the default is the "farther" rate,
# 15,000 + 1,000 * 2 micro-units per kWh and 300 + 100 * 2 bps.
NORTH = {"id": "north", "name": "North feeder", "tariff": TARIFF, "position_km": 0}
SOUTH = {"id": "south", "name": "South feeder", "tariff": TARIFF, "position_km": 2}
DEFAULT_NS = {"wheeling_per_kwh": 17_000, "loss_bps": 500}
OVERRIDE_NS = {"wheeling_per_kwh": 20_000, "loss_bps": 1_000}
RATE_NS = "/api/v1/zones/rates/north/south"


@pytest.fixture
async def zones(api: ApiClient) -> User:
    op = await api.operator()
    for zone in (NORTH, SOUTH):
        created = await api.http.post("/api/v1/zones", json=zone, headers=op.headers)
        assert created.status_code == 201, created.text
    return op


async def _rates(api: ApiClient, user: User) -> dict[tuple[str, str], dict[str, Any]]:
    response = await api.http.get("/api/v1/zones/rates", headers=user.headers)
    assert response.status_code == 200, response.text
    return {(r["seller_zone"], r["buyer_zone"]): r for r in response.json()["rates"]}


async def _cross_zone_trade(api: ApiClient) -> dict[str, Any]:
    """A seller in north, a buyer in south wanting 900 Wh delivered: the one trade made."""
    seller = await api.signup(Role.PROSUMER)
    buyer = await api.signup(Role.CONSUMER)
    await api.fund(seller, energy_wh=10_000)
    await api.fund(buyer, credit=10_000_000)
    sell = await api.order(seller, side="sell", qty_wh=10_000, limit_price=100_000, zone="north")
    assert sell.status_code == 201, sell.text
    buy = await api.order(buyer, side="buy", qty_wh=900, limit_price=300_000, zone="south")
    assert buy.status_code == 201, buy.text
    trades: list[dict[str, Any]] = buy.json()["trades"]
    assert len(trades) == 1, trades
    return trades[0]


async def test_the_governed_rate_is_shown_and_used(api: ApiClient, zones: User) -> None:
    rates = await _rates(api, zones)
    assert rates[("north", "south")] == {
        "seller_zone": "north",
        "buyer_zone": "south",
        **DEFAULT_NS,
    }
    assert rates[("north", "north")] == {
        "seller_zone": "north",
        "buyer_zone": "north",
        "wheeling_per_kwh": 5_000,
        "loss_bps": 100,
    }
    # 900 Wh delivered at 5 % loss needs 947 Wh sold; wheeling 947 Wh * 17,000 / 1000.
    trade = await _cross_zone_trade(api)
    assert (trade["seller_zone"], trade["buyer_zone"]) == ("north", "south")
    assert (trade["delivered_wh"], trade["qty_wh"], trade["wheeling_fee"]) == (900, 947, 16_099)


async def test_no_route_overrides_a_pair_and_nothing_changes(
    api: ApiClient, zones: User, state: AppState
) -> None:
    before = await _rates(api, zones)
    put = await api.http.put(RATE_NS, json=OVERRIDE_NS, headers=zones.headers)
    assert put.status_code in (404, 405), put.text
    assert put.headers["content-type"].startswith("application/problem+json")
    delete = await api.http.delete(RATE_NS, headers=zones.headers)
    assert delete.status_code in (404, 405), delete.text
    assert await _rates(api, zones) == before
    # After a restart of the market the rates are still the governed ones.
    await state.market.start()
    assert await _rates(api, zones) == before
    assert not state.market.rates_for(0).overrides
