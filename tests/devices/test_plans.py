"""Delivery plans stay within every device's limits and cover what they can."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.helpers import make_trade
from wattx.devices.model import DeviceKind, DeviceLimits
from wattx.devices.plans import (
    Budget,
    PlannedDevice,
    ScheduledSlot,
    build_plans,
    scheduled_budget,
)

SECONDS = 900


def test_a_trade_is_covered_by_the_seller_battery_and_the_buyer_charger() -> None:
    devices = [
        PlannedDevice("bat", "s", DeviceLimits(DeviceKind.BATTERY, 4_000, 10_000, 2_000), 5_000),
        PlannedDevice("ev", "b", DeviceLimits(DeviceKind.EV_CHARGER, 7_000, 50_000), 10_000),
    ]
    plan = build_plans([make_trade("t", "b", "s", 800, 100_000, loss_wh=8)], devices, SECONDS)["t"]
    (supply,) = plan.supply
    (take,) = plan.take
    assert (supply.device_id, supply.energy_wh, supply.power_w) == ("bat", 800, 3_200)
    assert (take.device_id, take.energy_wh, take.power_w) == ("ev", -792, -3_168)
    assert plan.uncovered_supply_wh == plan.uncovered_take_wh == 0


def test_what_no_device_can_do_stays_uncovered() -> None:
    # 4 kW for a quarter hour is 1,000 Wh; the reserve leaves 600.
    devices = [
        PlannedDevice("bat", "s", DeviceLimits(DeviceKind.BATTERY, 4_000, 10_000, 2_000), 2_600),
    ]
    plan = build_plans([make_trade("t", "b", "s", 1_500, 100_000)], devices, SECONDS)["t"]
    assert sum(s.energy_wh for s in plan.supply) == 600
    assert plan.uncovered_supply_wh == 900
    assert plan.take == ()
    assert plan.uncovered_take_wh == 1_500


@settings(max_examples=100, deadline=None)
@given(
    batteries=st.lists(
        st.tuples(st.integers(1, 10_000), st.integers(1, 20_000), st.integers(0, 100)),
        min_size=1,
        max_size=6,
    ),
    qtys=st.lists(st.integers(1, 5_000), min_size=1, max_size=8),
)
def test_plans_never_exceed_power_reserve_or_capacity(
    batteries: list[tuple[int, int, int]], qtys: list[int]
) -> None:
    devices = []
    for n, (power, capacity, reserve_pct) in enumerate(batteries):
        limits = DeviceLimits(DeviceKind.BATTERY, power, capacity, capacity * reserve_pct // 100)
        devices.append(PlannedDevice(f"d{n}", f"p{n % 2}", limits, capacity // 2))
    trades = [
        make_trade(f"t{i}", f"p{(i + 1) % 2}", f"p{i % 2}", q, 1, seq=i) for i, q in enumerate(qtys)
    ]
    plans = build_plans(trades, devices, SECONDS)
    out: dict[str, int] = {}
    into: dict[str, int] = {}
    for plan in plans.values():
        for s in plan.supply:
            out[s.device_id] = out.get(s.device_id, 0) + s.energy_wh
        for s in plan.take:
            into[s.device_id] = into.get(s.device_id, 0) - s.energy_wh
        for s in (*plan.supply, *plan.take):
            assert s.energy_wh != 0
    for d in devices:
        limits = d.limits
        soc = d.soc_wh or 0
        moved = out.get(d.id, 0) + into.get(d.id, 0)
        assert moved <= limits.rated_power_w * SECONDS // 3_600
        assert out.get(d.id, 0) <= max(0, soc - limits.reserve_wh)
        assert into.get(d.id, 0) <= limits.capacity_wh - soc
    for trade in trades:
        plan = plans[trade.id]
        assert sum(s.energy_wh for s in plan.supply) + plan.uncovered_supply_wh == trade.qty_wh


def test_a_schedule_gives_the_epoch_a_budget() -> None:
    start = datetime(2026, 6, 1, 12, tzinfo=UTC)
    slots = [ScheduledSlot(0, 300, 5_000), ScheduledSlot(200, 0, 5_190), ScheduledSlot(0, 0, 0)]
    # Slots of 5 minutes; a 10-minute epoch from the schedule's start covers the first two.
    assert scheduled_budget(start, 300, slots, start, 600) == Budget(300, 200)
    assert scheduled_budget(start, 300, slots, start + timedelta(hours=1), 600) is None


def test_a_budget_caps_what_the_plan_asks() -> None:
    devices = [
        PlannedDevice("bat", "s", DeviceLimits(DeviceKind.BATTERY, 4_000, 10_000, 2_000), 8_000),
        PlannedDevice("pv", "s", DeviceLimits(DeviceKind.PV_INVERTER, 2_000), None),
    ]
    trade = make_trade("t", "b", "s", 900, 100_000)
    # The battery alone could supply 900; its schedule allows 300, the PV the rest.
    plan = build_plans([trade], devices, SECONDS, {"bat": Budget(300, 0)})["t"]
    assert {s.device_id: s.energy_wh for s in plan.supply} == {"pv": 500, "bat": 300}
    assert plan.uncovered_supply_wh == 100
