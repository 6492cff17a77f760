"""Device limits and setpoints."""

from __future__ import annotations

import pytest

from wattx.devices.errors import InvalidDeviceError, SetpointOutOfLimitsError
from wattx.devices.model import DeviceKind, DeviceLimits

BATTERY = DeviceLimits(DeviceKind.BATTERY, 5_000, capacity_wh=10_000, reserve_wh=2_000)


@pytest.mark.parametrize(
    ("kind", "power", "capacity", "reserve"),
    [
        (DeviceKind.BATTERY, 0, 10_000, 0),  # no power
        (DeviceKind.BATTERY, 5_000, 0, 0),  # storage without capacity
        (DeviceKind.BATTERY, 5_000, 10_000, 10_001),  # reserve above capacity
        (DeviceKind.PV_INVERTER, 5_000, 1_000, 0),  # capacity on a kind without storage
        (DeviceKind.RELAY, 5_000, 0, 10),  # reserve without storage
        (DeviceKind.EV_CHARGER, 10**8, 50_000, 0),  # beyond the largest rated power
    ],
)
def test_limits_that_do_not_fit_are_refused(
    kind: DeviceKind, power: int, capacity: int, reserve: int
) -> None:
    with pytest.raises(InvalidDeviceError):
        DeviceLimits(kind, power, capacity, reserve)


def test_battery_setpoints_respect_power_reserve_and_capacity() -> None:
    quarter = 900
    BATTERY.check_setpoint(5_000, quarter, soc_wh=8_000)  # 1,250 Wh out, 6,750 left
    BATTERY.check_setpoint(-5_000, quarter, soc_wh=8_000)  # 1,250 Wh in, 9,250 after
    with pytest.raises(SetpointOutOfLimitsError):
        BATTERY.check_setpoint(5_001, quarter, soc_wh=8_000)
    with pytest.raises(SetpointOutOfLimitsError, match="reserve"):
        BATTERY.check_setpoint(5_000, quarter, soc_wh=3_000)  # would end at 1,750 < 2,000
    with pytest.raises(SetpointOutOfLimitsError, match="capacity"):
        BATTERY.check_setpoint(-5_000, quarter, soc_wh=9_000)
    assert BATTERY.supply_wh(quarter, 2_500) == 500
    assert BATTERY.take_wh(quarter, 9_500) == 500


def test_kinds_only_go_their_way() -> None:
    pv = DeviceLimits(DeviceKind.PV_INVERTER, 4_000)
    load = DeviceLimits(DeviceKind.SWITCHABLE_LOAD, 2_000)
    pv.check_setpoint(4_000, 900, None)
    load.check_setpoint(-2_000, 900, None)
    with pytest.raises(SetpointOutOfLimitsError, match="cannot import"):
        pv.check_setpoint(-1, 900, None)
    with pytest.raises(SetpointOutOfLimitsError, match="cannot export"):
        load.check_setpoint(1, 900, None)
    ev = DeviceLimits(DeviceKind.EV_CHARGER, 11_000, capacity_wh=60_000)
    assert ev.supply_wh(900, 30_000) == 0
    assert ev.take_wh(900, 30_000) == 2_750
