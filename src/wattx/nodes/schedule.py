"""A day of setpoints for the devices behind a node: 96 quarter-hour slots from a UTC
start, one setpoint (watts, or ``None`` for the device's local policy) per device
per slot.

The platform sends it as a durable ``schedule`` command; the node keeps it on
disk, replaces it only by a newer version (in one transaction), and runs it by
itself (also through a lost link), reporting each executed slot when it is
linked. Checked here before it leaves the service and again on the node.

Sign convention, as in :mod:`wattx.devices`: a positive setpoint delivers power
to the site (a battery discharges, a generator runs), a negative one draws power
from it (a battery charges, a load runs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from wattx.nodes.errors import InvalidCommandError

SLOTS = 96
SLOT = timedelta(minutes=15)
MAX_DEVICES = 16
MAX_SETPOINT_W = 1_000_000
"""1 MW: no device behind a node is larger."""
_NAME = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


@dataclass(frozen=True, slots=True)
class DeviceSchedule:
    zone: str
    device_id: str
    setpoints_w: tuple[int | None, ...]


@dataclass(frozen=True, slots=True)
class Schedule:
    version: int
    start: datetime
    devices: tuple[DeviceSchedule, ...]

    @property
    def end(self) -> datetime:
        return self.start + SLOTS * SLOT

    def slot_start(self, slot: int) -> datetime:
        return self.start + slot * SLOT

    def slot_end(self, slot: int) -> datetime:
        return self.start + (slot + 1) * SLOT

    def slot_at(self, now: datetime) -> int | None:
        """The slot ``now`` falls in, or ``None`` before the start and after the end."""
        if now < self.start or now >= self.end:
            return None
        return int((now - self.start) // SLOT)

    def to_payload(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "start": self.start.isoformat(),
            "devices": [
                {"zone": d.zone, "device_id": d.device_id, "setpoints_w": list(d.setpoints_w)}
                for d in self.devices
            ],
        }


def parse_schedule(payload: dict[str, Any]) -> Schedule:
    """The schedule a ``schedule`` command's payload describes, or
    :class:`InvalidCommandError` saying what is wrong."""
    if set(payload) != {"version", "start", "devices"}:
        raise InvalidCommandError(
            "a schedule payload is {version, start, devices}", keys=sorted(payload)
        )
    version = payload["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidCommandError("version is a positive whole number")
    start = _start(payload["start"])
    devices = payload["devices"]
    if not isinstance(devices, list) or not 1 <= len(devices) <= MAX_DEVICES:
        raise InvalidCommandError(f"devices is a list of 1 to {MAX_DEVICES} device schedules")
    parsed: list[DeviceSchedule] = []
    seen: set[tuple[str, str]] = set()
    for index, device in enumerate(devices):
        parsed.append(_device(index, device))
        key = (parsed[-1].zone, parsed[-1].device_id)
        if key in seen:
            raise InvalidCommandError("a device appears twice", device=f"{key[0]}/{key[1]}")
        seen.add(key)
    return Schedule(version, start, tuple(parsed))


def _start(value: Any) -> datetime:
    try:
        start = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        start = None
    if start is None or start.utcoffset() != timedelta(0):
        raise InvalidCommandError("start is an ISO 8601 instant in UTC", start=value)
    if start.minute % 15 or start.second or start.microsecond:
        raise InvalidCommandError("start lies on a quarter hour", start=value)
    return start.astimezone(UTC)


def _device(index: int, device: Any) -> DeviceSchedule:
    where = f"devices[{index}]"
    if not isinstance(device, dict):
        raise InvalidCommandError(f"{where} is an object")
    unknown = set(device) - {"zone", "device_id", "setpoints_w", "max_power_w"}
    missing = {"zone", "device_id", "setpoints_w"} - set(device)
    if unknown or missing:
        raise InvalidCommandError(
            f"{where} keys do not fit a device schedule",
            missing=sorted(missing),
            unknown=sorted(unknown),
        )
    for key in ("zone", "device_id"):
        if not isinstance(device[key], str) or not _NAME.fullmatch(device[key]):
            raise InvalidCommandError(f"{where}.{key} must match {_NAME.pattern}")
    limit = device.get("max_power_w", MAX_SETPOINT_W)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SETPOINT_W:
        raise InvalidCommandError(
            f"{where}.max_power_w is a whole number from 1 to {MAX_SETPOINT_W}"
        )
    setpoints = device["setpoints_w"]
    if not isinstance(setpoints, list) or len(setpoints) != SLOTS:
        raise InvalidCommandError(
            f"{where}.setpoints_w holds exactly {SLOTS} quarter hours",
            slots=len(setpoints) if isinstance(setpoints, list) else None,
        )
    for slot, value in enumerate(setpoints):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or abs(value) > limit:
            raise InvalidCommandError(
                f"{where}.setpoints_w[{slot}] is null or a whole number of watts within ±{limit}",
                value=value,
            )
    return DeviceSchedule(device["zone"], device["device_id"], tuple(setpoints))
