"""From schedules to setpoints: power per slot, signs, expiries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wattx.devices.scheduling.dayahead import Slot
from wattx.devices.scheduling.pairing import Transfer
from wattx.devices.scheduling.setpoints import (
    schedule_setpoints,
    slot_power_w,
    transfer_setpoints,
)

START = datetime(2026, 6, 1, 17, 0, tzinfo=UTC)


def test_quarter_hours_are_four_times_the_energy() -> None:
    assert slot_power_w(250, 900) == 1_000
    assert slot_power_w(-251, 900) == -1_004
    assert slot_power_w(0, 900) == 0


@given(st.integers(-1_000_000, 1_000_000), st.integers(1, 86_400))
def test_power_never_moves_more_than_the_plan(energy: int, slot_s: int) -> None:
    power = slot_power_w(energy, slot_s)
    assert power * energy >= 0
    # |power| * slot is at most |energy|, and one more watt would be too much.
    assert abs(power) * slot_s <= abs(energy) * 3_600 < (abs(power) + 1) * slot_s


def test_schedule_setpoints_follow_the_slots() -> None:
    slots = [Slot(400, 0, 0, 0, 1_380), Slot(0, 0, 0, 0, 1_380), Slot(0, 900, 0, 0, 433)]
    out = schedule_setpoints(slots, START, 900)
    assert [(at - START, sp.power_w, sp.expires_at - at) for at, sp in out] == [
        (timedelta(0), -1_600, timedelta(seconds=900)),
        (timedelta(seconds=900), 0, timedelta(seconds=900)),
        (timedelta(seconds=1_800), 3_600, timedelta(seconds=900)),
    ]


def test_a_batterys_transfers_add_up() -> None:
    transfers = [Transfer("full", "empty", 500), Transfer("full", "low", 250)]
    out = transfer_setpoints(transfers, START, 900)
    assert {k: v.power_w for k, v in out.items()} == {
        "full": 3_000,
        "empty": -2_000,
        "low": -1_000,
    }
    assert {v.expires_at for v in out.values()} == {START + timedelta(seconds=900)}


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        schedule_setpoints([], START.replace(tzinfo=None), 900)
    with pytest.raises(ValueError, match="timezone"):
        transfer_setpoints([], START.replace(tzinfo=None), 900)
    with pytest.raises(ValueError, match="slot_s"):
        slot_power_w(1, 0)
