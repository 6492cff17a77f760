"""The grid tree through the API: zones with parents, a coupled gate closure with a
binding feeder, its congestion report (closure, epoch list, own route, SSE), and
tree edits that are refused without changing anything."""

from __future__ import annotations

import asyncio
from typing import Any

from wattx.api.state import AppState
from wattx.bus.events import Event, EventType
from wattx.services.principal import Role

from .client import ApiClient, User
from .helpers import assert_problem

TARIFF = [{"start_hour": 0, "feed_in": 50_000, "retail": 400_000}]


def _zone(zone_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": zone_id,
        "name": zone_id.upper(),
        "tariff": TARIFF,
        "mechanism": "call_auction",
        **extra,
    }


async def _two_feeders(api: ApiClient) -> User:
    op = await api.operator()
    for zone in (
        _zone("t"),
        _zone("f1", parent="t", export_capacity_wh=300),
        _zone("f2", parent="t"),
    ):
        created = await api.http.post("/api/v1/zones", json=zone, headers=op.headers)
        assert created.status_code == 201, created.text
    return op


async def test_a_binding_feeder_splits_prices_and_its_rent_is_reported(
    api: ApiClient, state: AppState
) -> None:
    op = await _two_feeders(api)
    zones = (await api.http.get("/api/v1/zones", headers=op.headers)).json()
    assert {z["id"]: z["parent"] for z in zones} == {"t": None, "f1": "t", "f2": "t"}
    assert all(z["import_capacity_wh"] is None for z in zones)
    solar = await api.signup(Role.PROSUMER)
    home = await api.signup(Role.CONSUMER)
    await api.fund(solar, energy_wh=1_000)
    await api.fund(home, credit=10_000_000)
    sell = await api.order(solar, side="sell", qty_wh=1_000, limit_price=100_000, zone="f1")
    assert sell.status_code == 201, sell.text
    buy = await api.order(home, side="buy", qty_wh=1_000, limit_price=300_000, zone="f2")
    assert buy.status_code == 201, buy.text
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
    body = closed.json()
    up = next(r for r in body["congestion"] if r["child"] == "f1" and r["direction"] == "up")
    assert up["flow_wh"] == up["capacity_wh"] == 300
    assert up["shadow_price"] > 0
    assert up["rent"] == 300 * up["shadow_price"] // 1_000
    prices = body["clearing_prices"]
    assert prices["f1"] < prices["f2"]
    (trade,) = body["trades"]
    assert trade["qty_wh"] == 300
    # The rent rides in the trade's wheeling fee: buyer pays it, the grid account gets it.
    assert trade["wheeling_fee"] >= up["rent"] > 0
    assert cleared[0].data["congestion"] == body["congestion"]

    report = await api.http.get(f"/api/v1/epochs/{epoch_id}/congestion", headers=op.headers)
    assert report.status_code == 200, report.text
    assert report.json() == body["congestion"]
    epochs = await api.http.get("/api/v1/epochs", headers=op.headers)
    (row,) = [e for e in epochs.json()["closed"] if e["id"] == epoch_id]
    assert row["congestion"] == body["congestion"]


async def test_congestion_of_an_open_epoch_is_a_conflict(api: ApiClient, state: AppState) -> None:
    op = await _two_feeders(api)
    epoch_id = state.market.schedule.first_open_epoch(state.clock.now())
    r = await api.http.get(f"/api/v1/epochs/{epoch_id}/congestion", headers=op.headers)
    assert_problem(r, 409, "epoch_not_closed")


async def test_tree_edits_that_break_the_tree_change_nothing(api: ApiClient) -> None:
    op = await _two_feeders(api)
    update = {k: v for k, v in _zone("t").items() if k != "id"}
    cycle = await api.http.put(
        "/api/v1/zones/t", json={**update, "parent": "f1"}, headers=op.headers
    )
    assert_problem(cycle, 422, "invalid_grid_tree")
    unknown = await api.http.put(
        "/api/v1/zones/t", json={**update, "parent": "nowhere"}, headers=op.headers
    )
    assert_problem(unknown, 422, "unknown_grid_zone")
    forest = await api.http.post("/api/v1/zones", json=_zone("lone"), headers=op.headers)
    assert_problem(forest, 422, "invalid_grid_tree")
    negative = await api.http.put(
        "/api/v1/zones/f1",
        json={**update, "name": "F1", "parent": "t", "export_capacity_wh": -1},
        headers=op.headers,
    )
    assert_problem(negative, 422, "negative_capacity")
    negative_new = await api.http.post(
        "/api/v1/zones",
        json=_zone("f3", parent="t", import_capacity_wh=-5),
        headers=op.headers,
    )
    assert_problem(negative_new, 422, "negative_capacity")
    zones = (await api.http.get("/api/v1/zones", headers=op.headers)).json()
    assert {z["id"]: z["parent"] for z in zones} == {"t": None, "f1": "t", "f2": "t"}
    assert all(z["import_capacity_wh"] is None for z in zones)
    assert next(z for z in zones if z["id"] == "f1")["export_capacity_wh"] == 300
    # A valid edit goes through: f2 moves under f1.
    moved = await api.http.put(
        "/api/v1/zones/f2", json={**update, "name": "F2", "parent": "f1"}, headers=op.headers
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["parent"] == "f1"


async def test_a_full_link_is_named_when_it_stops_a_continuous_order(api: ApiClient) -> None:
    op = await api.operator()
    for zone in (
        _zone("t", mechanism="continuous"),
        _zone("f1", parent="t", mechanism="continuous"),
        _zone("f2", parent="t", mechanism="continuous", import_capacity_wh=200),
    ):
        created = await api.http.post("/api/v1/zones", json=zone, headers=op.headers)
        assert created.status_code == 201, created.text
    solar = await api.signup(Role.PROSUMER)
    home = await api.signup(Role.CONSUMER)
    await api.fund(solar, energy_wh=1_000)
    await api.fund(home, credit=10_000_000)
    sell = await api.order(solar, side="sell", qty_wh=1_000, limit_price=100_000, zone="f1")
    assert sell.status_code == 201, sell.text
    assert sell.json()["limited_by"] == []
    buy = await api.order(home, side="buy", qty_wh=500, limit_price=300_000, zone="f2")
    assert buy.status_code == 201, buy.text
    body = buy.json()
    assert sum(t["qty_wh"] for t in body["trades"]) == 200
    assert body["limited_by"] == ["f2-t:down"]
    assert body["order"]["status"] == "partially_filled"


async def test_a_negative_capacity_without_a_tree_changes_nothing(api: ApiClient) -> None:
    op = await api.operator()
    before = (await api.http.get("/api/v1/zones", headers=op.headers)).json()
    refused = await api.http.post(
        "/api/v1/zones", json=_zone("solo", export_capacity_wh=-1), headers=op.headers
    )
    assert_problem(refused, 422, "negative_capacity")
    after = (await api.http.get("/api/v1/zones", headers=op.headers)).json()
    assert after == before
