"""Zone-rate overrides through the API: set, shown, used for matching, removed, refused."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from wattx.api.state import AppState
from wattx.services.market import MarketService
from wattx.services.market_metrics import MarketMetrics
from wattx.services.principal import Role

from .client import ApiClient, User
from .conftest import ManualClock
from .helpers import assert_problem

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


async def test_override_is_shown_and_used_then_removed(api: ApiClient, zones: User) -> None:
    op = zones
    before = await _rates(api, op)
    assert before[("north", "south")] == {
        "seller_zone": "north",
        "buyer_zone": "south",
        **DEFAULT_NS,
        "source": "default",
    }
    put = await api.http.put(RATE_NS, json=OVERRIDE_NS, headers=op.headers)
    assert put.status_code == 200, put.text
    assert put.json() == {
        "seller_zone": "north",
        "buyer_zone": "south",
        **OVERRIDE_NS,
        "source": "override",
    }
    after = await _rates(api, op)
    assert after[("north", "south")]["source"] == "override"
    assert after[("north", "south")]["wheeling_per_kwh"] == 20_000
    # Only that direction changed.
    assert after[("south", "north")] == before[("south", "north")]
    assert after[("north", "north")] == before[("north", "north")]

    # 900 Wh delivered at 10 % loss needs 999 Wh sold (at 5 % it would be 947);
    # wheeling is 999 Wh * 20,000 / 1000 (the default would charge 16,099).
    trade = await _cross_zone_trade(api)
    assert (trade["seller_zone"], trade["buyer_zone"]) == ("north", "south")
    assert trade["delivered_wh"] == 900
    assert trade["qty_wh"] == 999
    assert trade["wheeling_fee"] == 19_980

    deleted = await api.http.delete(RATE_NS, headers=op.headers)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {
        "seller_zone": "north",
        "buyer_zone": "south",
        **DEFAULT_NS,
        "source": "default",
    }
    assert await _rates(api, op) == before
    again = await _cross_zone_trade(api)
    assert again["delivered_wh"] == 900
    assert again["qty_wh"] == 947
    assert again["wheeling_fee"] == 16_099


async def test_override_survives_a_restart_of_the_market(
    api: ApiClient, zones: User, state: AppState, clock: ManualClock
) -> None:
    put = await api.http.put(RATE_NS, json=OVERRIDE_NS, headers=zones.headers)
    assert put.status_code == 200, put.text
    fresh = MarketService(
        state.db,
        state.bus,
        clock,
        MarketMetrics(CollectorRegistry()),
        schedule=state.market.schedule,
        fee_bps=state.market.fee_bps,
        cross_zone=True,
    )
    await fresh.start()
    north, south = fresh.zones["north"], fresh.zones["south"]
    rate = fresh.rates.rate(north, south)
    assert (rate.wheeling_per_kwh, rate.loss_bps) == (20_000, 1_000)
    assert fresh.rates.is_override("north", "south")
    assert not fresh.rates.is_override("south", "north")


@pytest.mark.parametrize(
    "body",
    [
        {"wheeling_per_kwh": -1, "loss_bps": 100},
        {"wheeling_per_kwh": 1_000, "loss_bps": -1},
        {"wheeling_per_kwh": 1_000, "loss_bps": 10_000},
        {"wheeling_per_kwh": "1000", "loss_bps": 100},
        {"wheeling_per_kwh": 1_000},
        {"wheeling_per_kwh": 1_000, "loss_bps": 100, "extra": 1},
    ],
)
async def test_bad_values_are_refused_and_change_nothing(
    api: ApiClient, zones: User, body: dict[str, Any]
) -> None:
    before = await _rates(api, zones)
    response = await api.http.put(RATE_NS, json=body, headers=zones.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await _rates(api, zones) == before


async def test_only_operators_change_rates(api: ApiClient, zones: User) -> None:
    before = await _rates(api, zones)
    for role in (Role.PROSUMER, Role.CONSUMER, Role.AUDITOR):
        user = await api.signup(role)
        put = await api.http.put(RATE_NS, json=OVERRIDE_NS, headers=user.headers)
        assert_problem(put, 403, "forbidden")
        delete = await api.http.delete(RATE_NS, headers=user.headers)
        assert_problem(delete, 403, "forbidden")
    assert await _rates(api, zones) == before


async def test_unknown_zone_is_not_found(api: ApiClient, zones: User) -> None:
    before = await _rates(api, zones)
    for path in ("/api/v1/zones/rates/nowhere/south", "/api/v1/zones/rates/north/nowhere"):
        put = await api.http.put(path, json=OVERRIDE_NS, headers=zones.headers)
        assert_problem(put, 404, "zone_not_found")
        delete = await api.http.delete(path, headers=zones.headers)
        assert_problem(delete, 404, "zone_not_found")
    assert await _rates(api, zones) == before
    assert await _overrides(api) == []


async def _overrides(api: ApiClient) -> list[tuple[str, str]]:
    rows = await api.state.zones.rate_overrides()
    return [(row.seller_zone, row.buyer_zone) for row in rows]
