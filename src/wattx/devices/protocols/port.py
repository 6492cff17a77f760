"""The device port: what wattx needs from any device, whatever protocol it speaks.

Sign convention, for telemetry and setpoints alike: power is in whole watts
seen from the site, **positive when the device gives energy to the site**
(a battery discharging, an inverter exporting) and **negative when it takes
energy** (a battery charging, an EV charging). A setpoint carries an expiry: the
device (or its adapter) must fall back to idle at ``expires_at`` if no newer
setpoint arrived, so a lost link never leaves a battery discharging for ever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable


class DeviceState(StrEnum):
    IDLE = "idle"
    CHARGING = "charging"
    DISCHARGING = "discharging"
    FAULT = "fault"


@dataclass(frozen=True, slots=True)
class Telemetry:
    """One reading of a device. ``soc_wh`` is None when the device has no storage or
    does not report it."""

    power_w: int
    soc_wh: int | None
    state: DeviceState
    at: datetime


@dataclass(frozen=True, slots=True)
class Setpoint:
    """Run at ``power_w`` (sign convention above) until ``expires_at`` (UTC)."""

    power_w: int
    expires_at: datetime


class DeviceError(Exception):
    """A setpoint or request the device or its adapter refuses, with a stable code."""

    def __init__(self, code: str, detail: str) -> None:
        if code not in ERROR_CODES:
            raise ValueError(f"unknown device error code {code!r}")
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


SETPOINT_OUT_OF_RANGE = "setpoint_out_of_range"
SETPOINT_EXPIRED = "setpoint_expired"
DEVICE_UNAVAILABLE = "device_unavailable"
DEVICE_REJECTED = "device_rejected"
DEVICE_PROTOCOL_ERROR = "device_protocol_error"
ERROR_CODES = frozenset(
    {
        SETPOINT_OUT_OF_RANGE,
        SETPOINT_EXPIRED,
        DEVICE_UNAVAILABLE,
        DEVICE_REJECTED,
        DEVICE_PROTOCOL_ERROR,
    }
)
"""Every code a :class:`DeviceError` carries (docs/devices.md lists them)."""


@runtime_checkable
class DevicePort(Protocol):
    """Read telemetry, apply a setpoint, stop. Every adapter implements this."""

    async def read(self) -> Telemetry:
        """The device's current power, state of charge and state."""
        ...

    async def apply(self, setpoint: Setpoint) -> None:
        """Run at the setpoint until it expires; raise :class:`DeviceError` if refused."""
        ...

    async def stop(self) -> None:
        """Go idle now (no charge, no discharge)."""
        ...


def state_for(power_w: int) -> DeviceState:
    """The state a power implies under the sign convention."""
    if power_w > 0:
        return DeviceState.DISCHARGING
    if power_w < 0:
        return DeviceState.CHARGING
    return DeviceState.IDLE


def check_setpoint(setpoint: Setpoint, *, now: datetime, max_give_w: int, max_take_w: int) -> None:
    """Refuse a setpoint outside ``[-max_take_w, max_give_w]`` or already expired."""
    if setpoint.expires_at.tzinfo is None:
        raise DeviceError(SETPOINT_EXPIRED, "expires_at must be timezone-aware (UTC)")
    if setpoint.expires_at <= now:
        raise DeviceError(SETPOINT_EXPIRED, f"the setpoint expired at {setpoint.expires_at}")
    if not -max_take_w <= setpoint.power_w <= max_give_w:
        raise DeviceError(
            SETPOINT_OUT_OF_RANGE,
            f"{setpoint.power_w} W is outside [-{max_take_w}, {max_give_w}] W",
        )
