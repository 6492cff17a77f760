"""The day-ahead LP schedule: against a brute force on small horizons, feasibility after
rounding, and the shape of a summer day."""

from __future__ import annotations

import math
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattx.devices.scheduling.dayahead import (
    BatterySpec,
    Forecast,
    Schedule,
    ScheduleInputError,
    drawn_wh,
    grid_cost_milli,
    schedule_day_ahead,
    slot_energy_wh,
    stored_wh,
)


def brute_force_milli(
    forecast: Forecast, battery: BatterySpec, initial: int, final_min: int
) -> int:
    """The cheapest integer schedule under the same integer SoC rule, by dynamic
    programming over every whole-Wh state of charge and every (charge, discharge) pair."""
    n = len(forecast.pv_wh)
    rated = slot_energy_wh(battery.rated_power_w, forecast.slot_s)
    eff_c, eff_d = battery.charge_efficiency_ppm, battery.discharge_efficiency_ppm

    @cache
    def best(t: int, soc: int) -> float:
        if t == n:
            return 0 if soc >= final_min else math.inf
        result = math.inf
        for c in range(rated + 1):
            for d in range(rated + 1):
                nxt = soc + stored_wh(c, eff_c) - drawn_wh(d, eff_d)
                if not battery.reserve_wh <= nxt <= battery.capacity_wh:
                    continue
                net = forecast.load_wh[t] - forecast.pv_wh[t] + c - d
                cost = (
                    max(net, 0) * forecast.import_price[t]
                    - max(-net, 0) * (forecast.export_price[t])
                )
                result = min(result, cost + best(t + 1, nxt))
        return result

    value = best(0, initial)
    assert value != math.inf
    return int(value)


def check_feasible(
    schedule: Schedule, forecast: Forecast, battery: BatterySpec, initial: int, final_min: int
) -> None:
    rated = slot_energy_wh(battery.rated_power_w, forecast.slot_s)
    soc = initial
    for t, s in enumerate(schedule.slots):
        assert 0 <= s.charge_wh <= rated
        assert 0 <= s.discharge_wh <= rated
        soc = (
            soc
            + stored_wh(s.charge_wh, battery.charge_efficiency_ppm)
            - drawn_wh(s.discharge_wh, battery.discharge_efficiency_ppm)
        )
        assert s.soc_wh == soc
        assert battery.reserve_wh <= soc <= battery.capacity_wh
        assert s.import_wh >= 0
        assert s.export_wh >= 0
        assert min(s.import_wh, s.export_wh) == 0
        assert s.import_wh - s.export_wh == (
            forecast.load_wh[t] - forecast.pv_wh[t] + s.charge_wh - s.discharge_wh
        )
    assert soc >= final_min
    assert schedule.cost_micro == grid_cost_milli(schedule.slots, forecast) // 1000


@st.composite
def small_case(draw: st.DrawFn, *, exact: bool) -> tuple[Forecast, BatterySpec, int, int]:
    n = draw(st.integers(1, 5))
    pv = draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))
    load = draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))
    pi = draw(st.lists(st.integers(0, 400_000), min_size=n, max_size=n))
    pe = [draw(st.integers(0, p)) for p in pi]
    capacity = draw(st.integers(2, 30))
    reserve = draw(st.integers(0, capacity - 1))
    # 900 s slots: W / 4 Wh per slot, at most 8 Wh.
    power = 4 * draw(st.integers(0, 8))
    eff = (
        (1_000_000, 1_000_000)
        if exact
        else (draw(st.integers(800_000, 1_000_000)), draw(st.integers(800_000, 1_000_000)))
    )
    battery = BatterySpec(capacity, reserve, power, *eff)
    initial = draw(st.integers(reserve, capacity))
    final_min = draw(st.integers(reserve, initial))
    return Forecast(pv, load, pi, pe), battery, initial, final_min


@settings(max_examples=40)
@given(small_case(exact=True))
def test_lossless_schedule_matches_the_brute_force(
    case: tuple[Forecast, BatterySpec, int, int],
) -> None:
    forecast, battery, initial, final_min = case
    schedule = schedule_day_ahead(forecast, battery, initial, final_soc_min_wh=final_min)
    check_feasible(schedule, forecast, battery, initial, final_min)
    optimum = brute_force_milli(forecast, battery, initial, final_min)
    assert grid_cost_milli(schedule.slots, forecast) == optimum
    assert schedule.lp_objective_micro * 1000 == pytest.approx(optimum, abs=1e-3)


@settings(max_examples=40)
@given(small_case(exact=False))
def test_lossy_schedule_is_within_rounding_of_the_brute_force(
    case: tuple[Forecast, BatterySpec, int, int],
) -> None:
    forecast, battery, initial, final_min = case
    schedule = schedule_day_ahead(forecast, battery, initial, final_soc_min_wh=final_min)
    check_feasible(schedule, forecast, battery, initial, final_min)
    optimum = brute_force_milli(forecast, battery, initial, final_min)
    cost = grid_cost_milli(schedule.slots, forecast)
    # No integer schedule beats the brute force; rounding and the LP's margins (1 Wh of
    # power per slot, 2 Wh on the final SoC) cost at most a few Wh per slot at the dearest price.
    n = len(forecast.pv_wh)
    assert optimum <= cost <= optimum + max(forecast.import_price) * (4 * n + 4)


@settings(max_examples=25)
@given(
    st.integers(1, 24).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(0, 5_000), min_size=n, max_size=n),
            st.lists(st.integers(0, 5_000), min_size=n, max_size=n),
            st.lists(st.integers(-100_000, 500_000), min_size=n, max_size=n),
            st.lists(st.integers(0, 1_000_000), min_size=n, max_size=n),
        )
    ),
    st.integers(1, 40_000),
    st.integers(0, 20_000),
    st.integers(1, 1_000_000),
    st.integers(1, 1_000_000),
    st.data(),
)
def test_rounded_schedule_is_always_feasible(
    series: tuple[list[int], list[int], list[int], list[int]],
    capacity: int,
    power: int,
    eff_c: int,
    eff_d: int,
    data: st.DataObject,
) -> None:
    pv, load, pi, spread_ppm = series
    # Export never pays more than import: pe = pi - |pi| * spread (negative prices too).
    pe = [p - abs(p) * s // 1_000_000 for p, s in zip(pi, spread_ppm, strict=True)]
    reserve = data.draw(st.integers(0, capacity - 1))
    initial = data.draw(st.integers(reserve, capacity))
    final_min = data.draw(st.integers(reserve, initial))
    battery = BatterySpec(capacity, reserve, power, eff_c, eff_d)
    forecast = Forecast(pv, load, pi, pe)
    schedule = schedule_day_ahead(forecast, battery, initial, final_soc_min_wh=final_min)
    check_feasible(schedule, forecast, battery, initial, final_min)


def summer_day() -> Forecast:
    pv = [int(2_000 * math.sin(math.pi * (t - 24) / 48)) if 24 <= t < 72 else 0 for t in range(96)]
    load = [250 + (700 if 68 <= t < 88 else 0) for t in range(96)]
    import_price = [320_000 if 68 <= t < 88 else 180_000 for t in range(96)]
    return Forecast(pv, load, import_price, [70_000] * 96)


def test_summer_day_charges_on_surplus_and_discharges_into_the_peak() -> None:
    forecast = summer_day()
    battery = BatterySpec(10_000, 2_000, 5_000)
    schedule = schedule_day_ahead(forecast, battery, 2_000)
    check_feasible(schedule, forecast, battery, 2_000, 2_000)
    slots = schedule.slots
    # It charges from the midday surplus (and cheap hours), never in the peak...
    surplus = [t for t in range(96) if forecast.pv_wh[t] > forecast.load_wh[t]]
    assert sum(slots[t].charge_wh for t in surplus) > 5_000
    assert all(s.charge_wh == 0 for s in slots[68:88])
    # ...and covers the evening peak: (next to) nothing is imported then.
    # The 8 kWh above the reserve (less the losses) all go into the peak.
    assert sum(s.discharge_wh for s in slots[68:88]) > 7_000
    assert slots[87].soc_wh <= 2_002
    idle = schedule_day_ahead(forecast, BatterySpec(10_000, 2_000, 0), 2_000)
    assert schedule.cost_micro < idle.cost_micro


def test_a_dead_empty_battery_stays_idle_below_the_reserve() -> None:
    forecast = Forecast([0] * 4, [100] * 4, [300_000] * 4, [0] * 4)
    battery = BatterySpec(1_000, 500, 1_000)
    schedule = schedule_day_ahead(forecast, battery, 500)
    assert all(s.discharge_wh == 0 and s.soc_wh == 500 for s in schedule.slots)


@pytest.mark.parametrize(
    ("forecast", "battery", "initial", "final", "match"),
    [
        (Forecast([], [], [], []), BatterySpec(10, 0, 4), 0, None, "empty"),
        (Forecast([0], [0, 1], [1], [1]), BatterySpec(10, 0, 4), 0, None, "length"),
        (Forecast([0], [0], [1], [2]), BatterySpec(10, 0, 4), 0, None, "export price"),
        (Forecast([-1], [0], [1], [1]), BatterySpec(10, 0, 4), 0, None, ">= 0"),
        (Forecast([0], [0], [1], [1]), BatterySpec(10, 10, 4), 10, None, "reserve"),
        (Forecast([0], [0], [1], [1]), BatterySpec(10, 0, 4, 0), 0, None, "efficienc"),
        (Forecast([0], [0], [1], [1]), BatterySpec(10, 5, 4), 4, None, "initial"),
        (Forecast([0], [0], [1], [1]), BatterySpec(10, 0, 4), 0, 5, "cannot be reached"),
    ],
)
def test_bad_input_is_refused(
    forecast: Forecast, battery: BatterySpec, initial: int, final: int | None, match: str
) -> None:
    with pytest.raises(ScheduleInputError, match=match):
        schedule_day_ahead(forecast, battery, initial, final_soc_min_wh=final)


def test_a_tiny_lossy_battery_that_rounding_cannot_serve_stays_idle() -> None:
    # 1 Wh per slot at 80 % stores nothing in whole Wh, so no schedule can discharge
    # and recharge to the final SoC: the battery stays idle (and keeps it).
    forecast = Forecast([0] * 4, [0] * 4, [1, 0, 0, 0], [1, 0, 0, 0])
    battery = BatterySpec(2, 0, 4, 800_000, 1_000_000)
    schedule = schedule_day_ahead(forecast, battery, 1, final_soc_min_wh=1)
    assert [(s.charge_wh, s.discharge_wh, s.soc_wh) for s in schedule.slots] == [(0, 0, 1)] * 4
    with pytest.raises(ScheduleInputError, match="in whole Wh"):
        schedule_day_ahead(forecast, battery, 0, final_soc_min_wh=1)
