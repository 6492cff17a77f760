"""The household's live energy flow on the overview: from verified readings, the
household's trades for the epoch being delivered and its batteries' last report,
computed by the shared service (``EnergyFlowService`` over ``wattx.domain.energy_flow``)."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from fastapi import FastAPI

from chain_service.flow import record_export, set_up_market
from service.client import ApiClient
from service.conftest import ManualClock
from wattx.api.state import AppState
from wattx.domain.energy_flow import BatteryState, energy_flow
from wattx.web.render import kwh
from web.helpers import browser_login


def test_the_grid_takes_what_the_local_market_does_not() -> None:
    flow = energy_flow(
        7,
        production_wh=1_500,
        consumption_wh=400,
        bought_wh=100,
        sold_wh=1_000,
        batteries=[BatteryState(2_000, 5_000), BatteryState(None, 3_000)],
    )
    assert (flow.grid_import_wh, flow.grid_export_wh) == (300, 500)
    assert (flow.undelivered_sale_wh, flow.unused_purchase_wh) == (0, 0)
    assert (flow.batteries, flow.battery_soc_wh, flow.battery_capacity_wh) == (2, 2_000, 5_000)
    assert flow.battery_soc_ppm == 400_000
    short = energy_flow(7, production_wh=200, consumption_wh=0, bought_wh=50, sold_wh=900)
    assert (short.grid_export_wh, short.undelivered_sale_wh, short.unused_purchase_wh) == (
        0,
        700,
        50,
    )
    assert short.battery_soc_ppm is None
    with pytest.raises(ValueError, match="sold_wh"):
        energy_flow(7, production_wh=0, consumption_wh=0, bought_wh=0, sold_wh=-1)


def _row(html: str, flow: str) -> str:
    found = re.search(rf'<tr data-flow="{flow}"><th scope="row">[^<]*</th><td>([^<]*)</td>', html)
    assert found, flow
    return found.group(1)


async def test_overview_shows_the_flow_of_the_epoch_being_delivered(
    api: ApiClient, app: FastAPI, state: AppState, clock: ManualClock
) -> None:
    market = await set_up_market(api, serial="FLOW-1")
    await api.fund(market.seller, energy_wh=5_000)
    await api.fund(market.buyer, credit=5_000_000)
    sell = await api.order(
        market.seller, side="sell", qty_wh=1_200, limit_price=100_000, zone="main"
    )
    assert sell.status_code == 201, sell.text
    epoch_id = sell.json()["order"]["epoch_id"]
    buy = await api.order(market.buyer, side="buy", qty_wh=1_000, limit_price=150_000, zone="main")
    assert buy.status_code == 201, buy.text
    device = await api.http.post(
        "/api/v1/devices",
        json={
            "name": "home battery",
            "kind": "battery",
            "meter_id": market.meter_id,
            "rated_power_w": 5_000,
            "capacity_wh": 10_000,
            "reserve_wh": 1_000,
            "soc_wh": 4_000,
        },
        headers=market.seller.headers,
    )
    assert device.status_code == 201, device.text

    # Delivery of the traded epoch is under way; the seller's meter has verified
    # 1.5 kWh of export and seen 0.2 kWh of import so far.
    clock.current = state.market.schedule.epoch(epoch_id).start
    clock.advance(60)
    await record_export(state, market.meter_id, {epoch_id: (200, 1_500), epoch_id - 1: (9, 9)})
    async with browser_login(app, market.seller.email) as seller:
        page = await seller.get("/me")
        assert page.status_code == 200
        assert 'id="flow-live"' in page.text
        assert "sse:trade.executed" in page.text
        assert "wattx:resync from:body" in page.text
        live = await seller.get("/me/flow/live", headers={"hx-request": "true"})
        assert live.status_code == 200
        for flow, shown in (
            ("production", "1.5"),
            ("consumption", "0.2"),
            ("sold", "1.01"),  # the buyer's 1 kWh and the zone's 1 % loss
            ("bought", "0.0"),
            ("grid-import", "0.2"),
            ("grid-export", "0.49"),
            ("undelivered", "0.0"),
        ):
            assert _row(live.text, flow) == shown, flow
        assert "4.0 of 10.0 (40" in _row(live.text, "battery")
        assert f"Epoch {epoch_id}," in live.text
        assert 'data-age="' in live.text
    async with browser_login(app, market.buyer.email) as buyer:
        live = await buyer.get("/me/flow/live")
        assert _row(live.text, "bought") == "1.0"
        assert _row(live.text, "production") == "0.0"  # the seller's meter is not the buyer's
        assert _row(live.text, "grid-import") == "0.0"
        assert _row(live.text, "battery") == "–"
    anonymous = await api.http.get("/me/flow/live", headers={"accept": "text/html"})
    assert anonymous.status_code == 303

    # The API serves the same flow, from the same use case, for each party (signed in
    # again: the clock moved past the first tokens).
    seller_api = await api.login(market.seller.email, market.seller.role)
    buyer_api = await api.login(market.buyer.email, market.buyer.role)
    for party in (seller_api, buyer_api):
        answer = await api.http.get("/api/v1/energy-flow", headers=party.headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["epoch_id"], body["current"]) == (epoch_id, True)
        async with browser_login(app, party.email) as browser:
            live = (await browser.get("/me/flow/live")).text
        for flow, field in FLOW_FIELDS.items():
            assert _row(live, flow) == kwh(body[field]), (party.email, flow)
    seller_now = (await api.http.get("/api/v1/energy-flow", headers=seller_api.headers)).json()
    assert seller_now["production_wh"] == 1_500
    assert seller_now["sold_wh"] == 1_010
    assert seller_now["grid_export_wh"] == 490
    assert (seller_now["battery_soc_wh"], seller_now["battery_capacity_wh"]) == (4_000, 10_000)
    assert seller_now["battery_soc_ppm"] == 400_000
    started = datetime.fromisoformat(seller_now["start"].replace("Z", "+00:00"))
    assert started == state.market.schedule.epoch(epoch_id).start
    # An earlier epoch by its id: the readings of that epoch, no trades.
    before = await api.http.get(
        "/api/v1/energy-flow", params={"epoch_id": epoch_id - 1}, headers=seller_api.headers
    )
    assert before.status_code == 200, before.text
    assert before.json()["current"] is False
    assert (before.json()["production_wh"], before.json()["consumption_wh"]) == (9, 9)
    assert (before.json()["sold_wh"], before.json()["bought_wh"]) == (0, 0)
    # Bad input is a problem document; oversight has no household flow.
    for bad in ("-1", "x", str(2**63)):
        refused = await api.http.get(
            "/api/v1/energy-flow", params={"epoch_id": bad}, headers=seller_api.headers
        )
        assert refused.status_code == 422, (bad, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
    beyond = await api.http.get(
        "/api/v1/energy-flow", params={"epoch_id": 2**62}, headers=seller_api.headers
    )
    assert beyond.status_code == 422
    assert beyond.json()["code"] == "invalid_epoch"
    op = await api.operator()
    op = await api.login(op.email, op.role)
    operator = await api.http.get("/api/v1/energy-flow", headers=op.headers)
    assert operator.status_code == 403
    assert (await api.http.get("/api/v1/energy-flow")).status_code == 401


FLOW_FIELDS = {
    "production": "production_wh",
    "consumption": "consumption_wh",
    "bought": "bought_wh",
    "sold": "sold_wh",
    "grid-import": "grid_import_wh",
    "grid-export": "grid_export_wh",
    "undelivered": "undelivered_sale_wh",
}
