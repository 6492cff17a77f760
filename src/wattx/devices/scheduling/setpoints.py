"""From a schedule's energy per slot to the device port's setpoints (power until an expiry).

A slot's energy ``E`` Wh over ``slot_s`` seconds is the power ``E * 3600 / slot_s`` W,
rounded towards zero so that a device following the setpoint never moves more than the
plan; with quarter-hour slots it is exactly ``4 * E``. The sign is the port's: positive
when the device gives energy to the site (discharge), negative when it takes it (charge).
Each setpoint expires at the end of its slot.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from wattx.devices.protocols.port import Setpoint
from wattx.devices.scheduling.dayahead import Slot
from wattx.devices.scheduling.pairing import SECONDS_PER_HOUR, Transfer


def slot_power_w(energy_wh: int, slot_s: int) -> int:
    """The power that moves ``energy_wh`` in ``slot_s`` seconds, rounded towards zero."""
    if slot_s < 1:
        raise ValueError("slot_s must be >= 1")
    magnitude = abs(energy_wh) * SECONDS_PER_HOUR // slot_s
    return magnitude if energy_wh >= 0 else -magnitude


def schedule_setpoints(
    slots: Sequence[Slot], start: datetime, slot_s: int
) -> list[tuple[datetime, Setpoint]]:
    """``(slot start, setpoint)`` for every slot of a day-ahead schedule."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (UTC)")
    out = []
    for k, slot in enumerate(slots):
        begins = start + timedelta(seconds=k * slot_s)
        power = slot_power_w(slot.discharge_wh - slot.charge_wh, slot_s)
        out.append((begins, Setpoint(power, begins + timedelta(seconds=slot_s))))
    return out


def transfer_setpoints(
    transfers: Sequence[Transfer], start: datetime, slot_s: int
) -> dict[str, Setpoint]:
    """One setpoint per battery for a slot of pairing transfers (a battery's transfers
    add up: a donor discharges their sum, a receiver charges it)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (UTC)")
    net: dict[str, int] = {}
    for t in transfers:
        net[t.source] = net.get(t.source, 0) + t.qty_wh
        net[t.sink] = net.get(t.sink, 0) - t.qty_wh
    expires = start + timedelta(seconds=slot_s)
    return {bid: Setpoint(slot_power_w(wh, slot_s), expires) for bid, wh in net.items()}
