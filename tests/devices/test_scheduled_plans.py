"""Delivery plans follow a battery's day-ahead schedule: the plan asks no more of the
battery in the delivery epoch than the schedule's discharge (through HTTP)."""

from __future__ import annotations

from pathlib import Path

from devices.test_refunds import _epoch
from service.client import ApiClient
from service.helpers import assert_problem

# Two quarter-hours, no PV or load: exporting pays nothing in the first and a lot in
# the second, so the schedule keeps the battery for the second.
KEEP_FOR_LATER = {
    "slot_s": 900,
    "pv_wh": [0, 0],
    "load_wh": [0, 0],
    "import_price": [100_000, 400_000],
    "export_price": [0, 300_000],
}


async def test_the_plan_respects_the_day_ahead_schedule(api: ApiClient, tmp_path: Path) -> None:
    setup = await _epoch(api, tmp_path, battery_schedule=KEEP_FOR_LATER)
    for trade in setup.trades:
        plan = setup.plans[trade["id"]]
        # The battery could discharge 2,500 Wh in the epoch, but its schedule says 0.
        assert plan.supply == ()
        assert plan.uncovered_supply_wh == trade["qty_wh"]
        # The buyer's car has no schedule: it takes the trade as before.
        assert [s.energy_wh for s in plan.take] == [-trade["delivered_wh"]]


async def test_a_schedule_needs_a_battery_and_a_sound_forecast(
    api: ApiClient, tmp_path: Path
) -> None:
    setup = await _epoch(api, tmp_path)
    seller, buyer = setup.market.seller, setup.market.buyer
    url = f"/api/v1/devices/{setup.battery}/schedule"
    body = {"starts_at": "2026-06-01T00:00:00+00:00", **KEEP_FOR_LATER}
    # Export dearer than import is refused by the scheduler.
    bad = {**body, "export_price": [500_000, 300_000]}
    assert_problem(
        await api.http.put(url, json=bad, headers=seller.headers), 422, "invalid_schedule"
    )
    # An EV charger gets no battery schedule; someone else's battery is not found.
    car = f"/api/v1/devices/{setup.car}/schedule"
    assert_problem(
        await api.http.put(car, json=body, headers=buyer.headers), 422, "invalid_schedule"
    )
    assert_problem(
        await api.http.put(url, json=body, headers=buyer.headers), 404, "device_not_found"
    )
    ok = await api.http.put(url, json=body, headers=seller.headers)
    assert ok.status_code == 200, ok.text
    slots = ok.json()["slots"]
    # Nothing in the free slot; up to its 2,500 Wh (less the LP's 1 Wh margin) later.
    assert slots[0]["discharge_wh"] == 0
    assert 2_490 <= slots[1]["discharge_wh"] <= 2_500
    assert all(s["soc_wh"] >= 1_000 for s in slots)
