"""The simulated devices' pure parts: the fault plan and carrying out a setpoint."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from wattx.sim.community import HouseholdKind, HouseholdSpec
from wattx.sim.errors import SimulationConfigError
from wattx.sim.runner.client import Session
from wattx.sim.runner.devices import DeviceFault, DeviceFaultPlan, SetpointRun, VirtualDevice
from wattx.sim.runner.provision import Member


@pytest.mark.parametrize(
    "plan",
    [
        {"no_ack_ppm": -1},
        {"trip_ppm": 600_000, "partial_ppm": 400_001},
        {"partial_share_ppm": 1_000_000},
        {"partial_share_ppm": -1},
    ],
)
def test_a_fault_plan_out_of_range_is_refused(plan: dict[str, int]) -> None:
    with pytest.raises(SimulationConfigError):
        DeviceFaultPlan(**plan)


def test_the_same_seed_draws_the_same_faults_at_the_planned_rates() -> None:
    plan = DeviceFaultPlan(no_ack_ppm=100_000, trip_ppm=200_000, partial_ppm=300_000)
    rng_a, rng_b = random.Random("a"), random.Random("a")
    draws = [plan.draw(rng_a) for _ in range(20_000)]
    assert draws == [plan.draw(rng_b) for _ in range(20_000)]
    counts = Counter(draws)
    assert abs(counts[DeviceFault.NO_ACK] - 2_000) < 300
    assert abs(counts[DeviceFault.TRIP] - 4_000) < 400
    assert abs(counts[DeviceFault.PARTIAL] - 6_000) < 500
    assert DeviceFaultPlan().draw(random.Random(1)) is None


def _battery(soc_wh: int) -> VirtualDevice:
    member = Member(
        HouseholdSpec("h1", HouseholdKind.PV_BATTERY, 3_000),
        Session("u1", "h1@example.test", "a", "r"),
    )
    return VirtualDevice("d1", member, "battery", 5_000, 10_000, 1_000, soc_wh, random.Random(1))


@pytest.mark.parametrize(
    ("soc_wh", "energy_wh", "fault", "done_wh", "soc_after"),
    [
        (6_000, 2_000, None, 2_000, 4_000),  # discharges in full
        (2_000, 2_000, None, 1_000, 1_000),  # never below the reserve
        (6_000, 2_000, DeviceFault.PARTIAL, 1_000, 5_000),  # half a setpoint
        (6_000, 2_000, DeviceFault.TRIP, 1_000, 5_000),
        (6_000, -3_000, None, 3_000, 9_000),  # charges in full
        (9_500, -3_000, None, 500, 10_000),  # never above the capacity
    ],
)
def test_a_device_carries_out_its_setpoint_within_its_state_of_charge(
    soc_wh: int, energy_wh: int, fault: DeviceFault | None, done_wh: int, soc_after: int
) -> None:
    device = _battery(soc_wh)
    run = SetpointRun("t1", 1, energy_wh, fault)
    shortfall = device.carry_out(run, 500_000)
    assert (run.done_wh, device.soc_wh) == (done_wh, soc_after)
    assert shortfall == abs(energy_wh) - done_wh
