"""The Modbus TCP + SunSpec adapter against a simulated SunSpec battery (a real pymodbus
server on a free port)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from devices.protocols.sunspec_sim import BASE, INVERTER, NAMEPLATE, STORAGE, SimBattery, serving
from wattx.devices.protocols.port import (
    SETPOINT_EXPIRED,
    SETPOINT_OUT_OF_RANGE,
    DeviceError,
    DevicePort,
    DeviceState,
    Setpoint,
)
from wattx.devices.protocols.sunspec import SunSpecBattery


@pytest.fixture
async def battery() -> AsyncIterator[tuple[SimBattery, SunSpecBattery]]:
    sim = SimBattery(soc_wh=5_000.0)
    async with serving(sim) as port:
        adapter = SunSpecBattery("127.0.0.1", port)
        await adapter.connect()
        try:
            yield sim, adapter
        finally:
            adapter.close()


def soon(seconds: float = 3_600) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def test_discovers_the_models_and_reads_the_nameplate(
    battery: tuple[SimBattery, SunSpecBattery],
) -> None:
    _, adapter = battery
    assert isinstance(adapter, DevicePort)
    assert set(adapter.models) == {1, 103, 120, 124}
    assert adapter.models[124] == (STORAGE, 24)
    info = adapter.info
    assert (info.manufacturer, info.model, info.serial) == ("Wattx Labs", "SimBat 10", "SB-0001")
    assert info.capacity_wh == 10_000
    assert info.max_charge_w == info.max_discharge_w == 5_000
    telemetry = await adapter.read()
    assert telemetry.power_w == 0
    assert telemetry.state is DeviceState.IDLE
    assert telemetry.soc_wh == 5_000


async def test_soc_follows_a_discharge_then_a_charge(
    battery: tuple[SimBattery, SunSpecBattery],
) -> None:
    sim, adapter = battery
    await adapter.apply(Setpoint(2_500, soon()))
    # Registers as SunSpec model 124 has them: discharge mode, OutWRte 50.00 %.
    assert sim.reg(STORAGE + 3) == 0b10
    assert sim.reg(STORAGE + 10) == 5_000
    assert sim.reg(STORAGE + 11) == 0
    assert 3_590 <= sim.reg(STORAGE + 13) <= 3_600  # whole seconds to the expiry, rounded up
    start = (await adapter.read()).soc_wh
    await asyncio.sleep(0.3)
    t = await adapter.read()
    assert t.state is DeviceState.DISCHARGING
    assert t.power_w == 2_500
    assert start is not None
    assert t.soc_wh is not None
    assert t.soc_wh < start - 100
    await adapter.apply(Setpoint(-4_000, soon()))
    assert sim.reg(STORAGE + 3) == 0b01
    assert sim.reg(STORAGE + 11) == 8_000
    low = (await adapter.read()).soc_wh
    await asyncio.sleep(0.3)
    t = await adapter.read()
    assert t.state is DeviceState.CHARGING
    assert t.power_w == -4_000
    assert low is not None
    assert t.soc_wh is not None
    assert t.soc_wh > low + 100
    await adapter.stop()
    idle = await adapter.read()
    assert idle.state is DeviceState.IDLE
    assert sim.reg(STORAGE + 3) == 0
    await asyncio.sleep(0.1)
    assert (await adapter.read()).soc_wh == idle.soc_wh


async def test_the_device_reverts_to_idle_at_expiry(
    battery: tuple[SimBattery, SunSpecBattery],
) -> None:
    sim, adapter = battery
    # 60 s of device time is 1/60 s of wall time in the simulator.
    await adapter.apply(Setpoint(1_000, soon(60)))
    assert 50 <= sim.reg(STORAGE + 13) <= 60
    await asyncio.sleep(0.2)
    assert (await adapter.read()).state is DeviceState.IDLE
    assert sim.reg(STORAGE + 3) == 0


async def test_refused_setpoints_write_nothing(
    battery: tuple[SimBattery, SunSpecBattery],
) -> None:
    sim, adapter = battery
    before = list(sim.registers)
    with pytest.raises(DeviceError) as out_of_range:
        await adapter.apply(Setpoint(5_001, soon()))
    assert out_of_range.value.code == SETPOINT_OUT_OF_RANGE
    with pytest.raises(DeviceError) as charge_too_fast:
        await adapter.apply(Setpoint(-6_000, soon()))
    assert charge_too_fast.value.code == SETPOINT_OUT_OF_RANGE
    with pytest.raises(DeviceError) as expired:
        await adapter.apply(Setpoint(1_000, datetime.now(UTC) - timedelta(seconds=1)))
    assert expired.value.code == SETPOINT_EXPIRED
    assert (
        sim.registers[STORAGE - 40_000 : STORAGE - 40_000 + 24]
        == before[STORAGE - 40_000 : STORAGE - 40_000 + 24]
    )


async def test_a_faulted_inverter_reads_as_fault(
    battery: tuple[SimBattery, SunSpecBattery],
) -> None:
    sim, adapter = battery
    sim.fault = True
    await adapter.apply(Setpoint(2_000, soon()))
    t = await adapter.read()
    assert t.state is DeviceState.FAULT
    assert sim.reg(INVERTER + 36) == 7
    assert t.power_w == 0


async def test_no_sunspec_map_is_a_clear_error() -> None:
    sim = SimBattery()
    sim.registers[0] = 0  # break the "SunS" marker
    async with serving(sim) as port:
        adapter = SunSpecBattery("127.0.0.1", port, timeout_s=1.0)
        try:
            with pytest.raises(DeviceError, match="no SunSpec map"):
                await adapter.connect()
        finally:
            adapter.close()


async def test_an_unreachable_device_is_unavailable() -> None:
    from devices.protocols.sunspec_sim import free_port

    adapter = SunSpecBattery("127.0.0.1", free_port(), timeout_s=0.5)
    with pytest.raises(DeviceError) as err:
        await adapter.connect()
    assert err.value.code == "device_unavailable"
    adapter.close()


async def test_concurrent_setpoints_do_not_interleave(
    battery: tuple[SimBattery, SunSpecBattery],
) -> None:
    sim, adapter = battery
    sim.writes.clear()
    await asyncio.gather(
        *(adapter.apply(Setpoint(p, soon())) for p in (3_000, -1_000, 2_000, -4_000))
    )
    # Each setpoint's three writes (revert timeout, rates, mode) arrive together.
    assert [a for a, _ in sim.writes] == [STORAGE + 13, STORAGE + 10, STORAGE + 3] * 4
    for k in range(4):
        (_, rates), (_, [mode]) = sim.writes[3 * k + 1 : 3 * k + 3]
        assert mode == (0b10 if rates[0] else 0b01)


async def test_without_a_nameplate_capacity_the_configured_one_is_used() -> None:
    sim = SimBattery(soc_wh=2_500.0)
    sim.registers[NAMEPLATE + 17 - BASE] = 0xFFFF  # WHRtg not implemented
    async with serving(sim) as port:
        unknown = SunSpecBattery("127.0.0.1", port)
        try:
            with pytest.raises(DeviceError, match="no energy capacity") as err:
                await unknown.connect()
            assert err.value.code == "device_protocol_error"
        finally:
            unknown.close()
        configured = SunSpecBattery("127.0.0.1", port, capacity_wh=20_000)
        try:
            assert (await configured.connect()).capacity_wh == 20_000
            # ChaState is 25 % of the simulator's 10 kWh: 25 % of the configured 20 kWh.
            assert (await configured.read()).soc_wh == 5_000
        finally:
            configured.close()
