"""A virtual battery and the meter in front of it, as plain state machines: no I/O.

The battery answers the commands of ``docs/device-protocol.md`` (dropping
duplicates by id, refusing expired ones) and follows its setpoint within its
rated power, its capacity and its reserve; the meter counts the energy that
flowed through it in whole Wh registers. Energy is integrated in milliwatt-hours
(integers), so nothing is lost to rounding however short the steps.

Signs, as in :mod:`wattx.devices`: a positive setpoint delivers power to the site
(the battery discharges: the meter exports), a negative one draws power (it
charges: the meter imports).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

MWH_PER_WH = 1000
MS_PER_H = 3_600_000
DEDUP = timedelta(days=7)
MAX_DETAIL = 500
SNAPSHOT_VERSION = 1


@dataclass(frozen=True, slots=True)
class BatterySpec:
    capacity_wh: int
    rated_power_w: int
    reserve_wh: int

    def __post_init__(self) -> None:
        if self.capacity_wh <= 0:
            raise ValueError("capacity_wh must be positive")
        if self.rated_power_w <= 0:
            raise ValueError("rated_power_w must be positive")
        if not 0 <= self.reserve_wh <= self.capacity_wh:
            raise ValueError("reserve_wh lies from 0 to capacity_wh")


@dataclass(slots=True)
class _Hold:
    """What the battery follows instead of its local policy (idle)."""

    power_w: int
    source: str
    command_id: str
    starts_at: datetime | None = None
    until: datetime | None = None


@dataclass(slots=True)
class VirtualBattery:
    spec: BatterySpec
    soc_mwh: int
    at: datetime
    locks: dict[str, int] = field(default_factory=dict)
    _hold: _Hold | None = None
    _acks: dict[str, tuple[datetime, dict[str, Any]]] = field(default_factory=dict)
    applied: int = 0
    """Commands carried out (not counting duplicates)."""

    @classmethod
    def new(cls, spec: BatterySpec, *, soc_wh: int, at: datetime) -> VirtualBattery:
        if not 0 <= soc_wh <= spec.capacity_wh:
            raise ValueError("soc_wh lies from 0 to capacity_wh")
        return cls(spec, soc_wh * MWH_PER_WH, at)

    # -- what outlives a restart

    def snapshot(self) -> dict[str, Any]:
        """What a restarted battery keeps: its charge, its trade locks and the acks it
        gave in the last 7 days (so a resent command is still a duplicate). Not what it
        was following: a restarted battery starts under its local policy, as a lapsed
        lease would leave it."""
        return {
            "version": SNAPSHOT_VERSION,
            "capacity_wh": self.spec.capacity_wh,
            "soc_mwh": self.soc_mwh,
            "at": self.at.isoformat(),
            "locks": dict(sorted(self.locks.items())),
            "acks": {k: [at.isoformat(), ack] for k, (at, ack) in self._acks.items()},
            "applied": self.applied,
        }

    @classmethod
    def restore(cls, spec: BatterySpec, doc: Any, *, at: datetime) -> VirtualBattery:
        """The battery of a :meth:`snapshot`, running again from ``at`` (no energy flowed
        while it was down). A charge above this spec's capacity (the capacity was
        lowered) is cut to it. :class:`ValueError` for a document that is not one."""
        try:
            if not isinstance(doc, dict) or doc.get("version") != SNAPSHOT_VERSION:
                raise ValueError("not a battery state of this version")
            soc_mwh = doc["soc_mwh"]
            if isinstance(soc_mwh, bool) or not isinstance(soc_mwh, int) or soc_mwh < 0:
                raise ValueError("soc_mwh is not a whole number of mWh")
            locks = {str(k): int(v) for k, v in dict(doc["locks"]).items()}
            acks = {
                str(k): (datetime.fromisoformat(str(v[0])), dict(v[1]))
                for k, v in dict(doc["acks"]).items()
            }
            applied = int(doc["applied"])
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"not a battery state: {exc}") from exc
        soc = min(soc_mwh, spec.capacity_wh * MWH_PER_WH)
        return cls(spec, soc, at, locks=locks, _acks=acks, applied=applied)

    # -- state

    @property
    def soc_wh(self) -> int:
        return self.soc_mwh // MWH_PER_WH

    @property
    def soc_permille(self) -> int:
        return self.soc_mwh * 1000 // (self.spec.capacity_wh * MWH_PER_WH)

    @property
    def locked_wh(self) -> int:
        return sum(self.locks.values())

    def setpoint_w(self, now: datetime) -> int:
        """The power asked of the battery at ``now`` (0 under its local policy)."""
        hold = self._hold
        if hold is None:
            return 0
        if hold.starts_at is not None and now < hold.starts_at:
            return 0
        if hold.until is not None and now >= hold.until:
            return 0
        return hold.power_w

    def state(self, now: datetime) -> dict[str, Any]:
        hold = self._hold
        return {
            "mode": "local" if hold is None else hold.source,
            "setpoint_w": self.setpoint_w(now),
            "until": hold.until.isoformat() if hold and hold.until else None,
            "locked_wh": self.locked_wh,
        }

    # -- physics

    def advance(self, now: datetime) -> tuple[int, int]:
        """Run the battery from its last instant to ``now``; the energy (mWh) that left
        it (delivered to the site) and that went into it (drawn), in that order.

        A setpoint is followed within the rated power; charging stops at the
        capacity, discharging at the reserve. A hold whose ``until`` passed ends."""
        delivered = drawn = 0
        while self.at < now:
            step_end = now
            hold = self._hold
            # Split the step at the hold's boundaries so each part has one setpoint.
            if hold is not None:
                for edge in (hold.starts_at, hold.until):
                    if edge is not None and self.at < edge < step_end:
                        step_end = edge
            power = max(
                -self.spec.rated_power_w, min(self.spec.rated_power_w, self.setpoint_w(self.at))
            )
            ms = int((step_end - self.at) / timedelta(milliseconds=1))
            magnitude = abs(power) * ms * MWH_PER_WH // MS_PER_H
            change = magnitude if power > 0 else -magnitude  # mWh leaving the battery
            if change > 0:
                floor = self.spec.reserve_wh * MWH_PER_WH
                change = max(0, min(change, self.soc_mwh - floor))
                delivered += change
            elif change < 0:
                room = self.spec.capacity_wh * MWH_PER_WH - self.soc_mwh
                change = -min(-change, room)
                drawn -= change
            self.soc_mwh -= change
            self.at = step_end
            if hold is not None and hold.until is not None and self.at >= hold.until:
                self._hold = None
        return delivered, drawn

    def power_w(self, now: datetime) -> int:
        """The power the battery actually runs at ``now`` (0 at a limit)."""
        asked = max(-self.spec.rated_power_w, min(self.spec.rated_power_w, self.setpoint_w(now)))
        if asked > 0 and self.soc_mwh <= self.spec.reserve_wh * MWH_PER_WH:
            return 0
        if asked < 0 and self.soc_mwh >= self.spec.capacity_wh * MWH_PER_WH:
            return 0
        return asked

    # -- commands

    def handle(self, envelope: Any, now: datetime) -> dict[str, Any]:
        """The ack for a command envelope; a duplicate gets the first ack again and
        changes nothing."""
        if not isinstance(envelope, dict) or not isinstance(envelope.get("id"), str):
            return {"id": None, "status": "rejected", "detail": "not a command envelope"}
        command_id = envelope["id"]
        for old in [k for k, (at, _) in self._acks.items() if now - at > DEDUP]:
            del self._acks[old]
        if command_id in self._acks:
            return self._acks[command_id][1]
        self.advance(now)
        ack = self._carry_out(envelope, now)
        self._acks[command_id] = (now, ack)
        if ack["status"] == "applied":
            self.applied += 1
        return ack

    def _carry_out(self, envelope: dict[str, Any], now: datetime) -> dict[str, Any]:
        command_id: str = envelope["id"]
        try:
            expires_at = datetime.fromisoformat(str(envelope.get("expires_at")))
        except ValueError:
            return _rejected(command_id, "expires_at is not an ISO 8601 instant")
        if now >= expires_at:
            return _rejected(command_id, "expired")
        payload = envelope.get("payload")
        if not isinstance(payload, dict):
            return _rejected(command_id, "payload is not an object")
        kind = envelope.get("type")
        if kind == "setpoint":
            return self._follow(command_id, payload, "schedule", until_key="until")
        if kind == "schedule":
            return self._follow(command_id, payload, "trade", starts_key="starts_at")
        if kind == "transfer.start":
            return self._follow(command_id, payload, "actuation")
        if kind in ("transfer.stop", "release"):
            self._hold = None
            return {"id": command_id, "status": "applied"}
        if kind == "lock":
            return self._lock(command_id, payload)
        if kind == "unlock":
            trade = payload.get("trade_id")
            self.locks.pop(str(trade), None)
            return {"id": command_id, "status": "applied"}
        return _rejected(command_id, f"unknown command type {kind!r}")

    def _follow(
        self,
        command_id: str,
        payload: dict[str, Any],
        source: str,
        *,
        until_key: str | None = None,
        starts_key: str | None = None,
    ) -> dict[str, Any]:
        power = payload.get("setpoint_w", payload.get("power_w"))
        if isinstance(power, bool) or not isinstance(power, int):
            return _rejected(command_id, "needs a whole number of watts (setpoint_w or power_w)")
        starts_at = until = None
        try:
            if starts_key is not None and payload.get(starts_key) is not None:
                starts_at = datetime.fromisoformat(str(payload[starts_key]))
            if until_key is not None and payload.get(until_key) is not None:
                until = datetime.fromisoformat(str(payload[until_key]))
            seconds = payload.get("seconds")
            if isinstance(seconds, int) and not isinstance(seconds, bool) and starts_at:
                until = starts_at + timedelta(seconds=seconds)
        except ValueError:
            return _rejected(command_id, "a time is not an ISO 8601 instant")
        rated = self.spec.rated_power_w
        clipped = max(-rated, min(rated, power))
        self._hold = _Hold(clipped, source, command_id, starts_at, until)
        if clipped != power:
            return {
                "id": command_id,
                "status": "applied",
                "detail": f"clipped to the rated power: {clipped} W",
            }
        return {"id": command_id, "status": "applied"}

    def _lock(self, command_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        qty = payload.get("qty_wh", payload.get("energy_wh"))
        trade = payload.get("trade_id")
        if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
            return _rejected(command_id, "lock needs a positive qty_wh")
        usable = self.soc_wh - self.spec.reserve_wh - self.locked_wh
        if qty > usable:
            return _rejected(command_id, f"only {max(0, usable)} Wh above the reserve")
        self.locks[str(trade or command_id)] = qty
        return {"id": command_id, "status": "applied"}


def _rejected(command_id: str, detail: str) -> dict[str, Any]:
    return {"id": command_id, "status": "rejected", "detail": detail[:MAX_DETAIL]}


@dataclass(slots=True)
class MeterRegisters:
    """A meter's cumulative registers, fed in mWh, read in whole Wh."""

    import_mwh: int = 0
    export_mwh: int = 0

    def add(self, *, exported_mwh: int, imported_mwh: int) -> None:
        self.export_mwh += exported_mwh
        self.import_mwh += imported_mwh

    @property
    def import_wh(self) -> int:
        return self.import_mwh // MWH_PER_WH

    @property
    def export_wh(self) -> int:
        return self.export_mwh // MWH_PER_WH
