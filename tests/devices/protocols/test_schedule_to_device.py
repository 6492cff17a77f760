"""A day-ahead schedule driving a (simulated) SunSpec battery through the device port: the
battery delivers the slot's planned energy and goes idle when the setpoint expires."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from devices.protocols.sunspec_sim import SimBattery, serving
from devices.scheduling.test_dayahead import summer_day
from wattx.devices.protocols.port import DeviceState, Setpoint
from wattx.devices.protocols.sunspec import SunSpecBattery
from wattx.devices.scheduling.dayahead import BatterySpec, schedule_day_ahead
from wattx.devices.scheduling.setpoints import schedule_setpoints


async def test_the_battery_delivers_a_planned_slot() -> None:
    # The simulator runs 3600 times faster than the wall clock: a quarter-hour is 0.25 s.
    sim = SimBattery(capacity_wh=10_000, w_cha_max=5_000, soc_wh=9_000.0)
    async with serving(sim) as port:
        adapter = SunSpecBattery("127.0.0.1", port)
        info = await adapter.connect()
        try:
            battery = BatterySpec(
                info.capacity_wh, 2_000, info.max_discharge_w, 1_000_000, 1_000_000
            )
            before = await adapter.read()
            assert before.soc_wh is not None
            schedule = schedule_day_ahead(summer_day(), battery, before.soc_wh)
            # The first slot of the evening peak that discharges.
            start = datetime.now(UTC)
            setpoints = schedule_setpoints(schedule.slots, start, 900)
            k = next(t for t in range(68, 96) if schedule.slots[t].discharge_wh > 0)
            _, setpoint = setpoints[k]
            planned = schedule.slots[k].discharge_wh
            # Played now: the setpoint runs for one (simulated) slot from now.
            now = datetime.now(UTC)
            live = Setpoint(setpoint.power_w, now + timedelta(seconds=900))
            await adapter.apply(live)
            assert (await adapter.read()).state is DeviceState.DISCHARGING
            await asyncio.sleep(0.6)  # more than the slot: the device reverts by itself
            after = await adapter.read()
            assert after.state is DeviceState.IDLE
            assert after.soc_wh is not None
            # ChaState has 0.01 % (1 Wh) resolution and the revert timeout whole seconds.
            assert abs((before.soc_wh - after.soc_wh) - planned) <= 3
        finally:
            adapter.close()
