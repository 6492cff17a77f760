from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattx.sim.battery import PPM, Battery, BatterySpec
from wattx.sim.errors import SimulationConfigError

SPEC = BatterySpec.from_round_trip(capacity_wh=10_000, power_w=5_000, round_trip_ppm=900_000)


def test_round_trip_is_split_evenly() -> None:
    assert SPEC.charge_efficiency_ppm == SPEC.discharge_efficiency_ppm == 948_683
    assert (SPEC.soc_min_wh, SPEC.soc_max_wh) == (500, 9_500)


def test_charging_is_capped_by_power_and_loses_energy() -> None:
    battery = Battery(SPEC, soc_wh=1_000)
    flow = battery.charge(5_000, step_s=900)
    assert flow.accepted_wh == 1_250  # 5 kW for a quarter hour
    assert flow.soc_change_wh == 1_250 * SPEC.charge_efficiency_ppm // PPM
    assert flow.loss_wh == flow.accepted_wh - flow.soc_change_wh > 0
    assert battery.soc_wh == 1_000 + flow.soc_change_wh


def test_full_and_empty_batteries_refuse() -> None:
    full = Battery(SPEC, soc_wh=SPEC.soc_max_wh)
    empty = Battery(SPEC, soc_wh=SPEC.soc_min_wh)
    assert full.charge(1_000, 900).accepted_wh == 0
    assert empty.discharge(1_000, 900).delivered_wh == 0


def test_discharge_delivers_exactly_what_is_asked_when_possible() -> None:
    battery = Battery(SPEC, soc_wh=5_000)
    flow = battery.discharge(700, step_s=900)
    assert flow.delivered_wh == 700
    assert -flow.soc_change_wh == flow.delivered_wh + flow.loss_wh


def test_invalid_specs_are_rejected() -> None:
    with pytest.raises(SimulationConfigError):
        BatterySpec.from_round_trip(10_000, 5_000, round_trip_ppm=1_200_000)
    with pytest.raises(SimulationConfigError):
        Battery(SPEC, soc_wh=SPEC.capacity_wh)


operations = st.lists(
    st.tuples(st.booleans(), st.integers(min_value=0, max_value=20_000)), max_size=60
)


@settings(deadline=None)
@given(
    operations,
    st.integers(min_value=500_000, max_value=1_000_000),
    st.sampled_from([60, 900, 3600]),
)
def test_limits_hold_and_every_step_balances(
    steps: list[tuple[bool, int]], round_trip_ppm: int, step_s: int
) -> None:
    spec = BatterySpec.from_round_trip(13_500, 4_000, round_trip_ppm)
    battery = Battery(spec, soc_wh=spec.soc_min_wh)
    for charging, amount in steps:
        before = battery.soc_wh
        flow = battery.charge(amount, step_s) if charging else battery.discharge(amount, step_s)
        assert spec.soc_min_wh <= battery.soc_wh <= spec.soc_max_wh
        assert flow.accepted_wh <= spec.max_charge_wh(step_s)
        assert flow.delivered_wh <= spec.max_discharge_wh(step_s)
        assert flow.accepted_wh <= amount
        assert flow.delivered_wh <= amount
        assert flow.loss_wh >= 0
        assert battery.soc_wh - before == flow.soc_change_wh
        assert flow.accepted_wh - flow.delivered_wh == flow.soc_change_wh + flow.loss_wh
