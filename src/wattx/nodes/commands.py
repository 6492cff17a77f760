"""Durable commands to a node: their states, the allow-list of types, retry backoff.

A command is a row from the moment it is issued::

    queued ──▶ sent ──▶ node_durable ──▶ applied
      │         │            └─────────▶ rejected
      └─────────┴──▶ expired

``sent`` is repeated (with ``retries`` counted and exponential backoff) until
the node says it has persisted the command (``node_durable``); the node drops
duplicates by id, so a resend never runs a command twice. A command not
durable on the node by its ``expires_at`` expires. There is no remote shell:
only the types below exist, each with a checked payload.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from wattx.nodes.desired import check_apply_payload
from wattx.nodes.errors import CommandStateError, InvalidCommandError
from wattx.nodes.schedule import parse_schedule

MAX_PAYLOAD_KEYS = 64
MAX_TTL_S = 7 * 86_400
MAX_DELAY_S = 30 * 86_400
"""How far ahead ``not_before`` may lie."""
DEFAULT_TTL_S = 3600
RETRY_BASE_S = 5
RETRY_CAP_S = 300


class CommandState(StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    NODE_DURABLE = "node_durable"
    APPLIED = "applied"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self in (CommandState.APPLIED, CommandState.REJECTED, CommandState.EXPIRED)

    @property
    def awaits_delivery(self) -> bool:
        """Still to be (re)sent to the node."""
        return self in (CommandState.QUEUED, CommandState.SENT)


_NEXT: dict[CommandState, frozenset[CommandState]] = {
    CommandState.QUEUED: frozenset(
        {CommandState.SENT, CommandState.EXPIRED, CommandState.NODE_DURABLE}
    ),
    CommandState.SENT: frozenset(
        {
            CommandState.SENT,
            CommandState.NODE_DURABLE,
            CommandState.APPLIED,
            CommandState.REJECTED,
            CommandState.EXPIRED,
        }
    ),
    CommandState.NODE_DURABLE: frozenset({CommandState.APPLIED, CommandState.REJECTED}),
    CommandState.APPLIED: frozenset(),
    CommandState.REJECTED: frozenset(),
    CommandState.EXPIRED: frozenset(),
}


def can_move(current: CommandState, target: CommandState) -> bool:
    return target in _NEXT[current]


def check_move(current: CommandState, target: CommandState) -> None:
    if not can_move(current, target):
        raise CommandStateError(
            f"a {current.value} command cannot become {target.value}",
            state=current.value,
            target=target.value,
        )


def retry_delay_s(
    retries: int, *, base_s: float = RETRY_BASE_S, cap_s: float = RETRY_CAP_S
) -> float:
    """Seconds before resending a command already sent ``retries`` times."""
    return float(min(cap_s, base_s * 2 ** max(0, retries - 1)))


class CommandType(StrEnum):
    DEVICE = "device.command"
    """Forward a command to a device behind the node (``docs/device-protocol.md``)."""
    DIAGNOSTICS = "diagnostics"
    """One of the allow-listed read-only diagnostics."""
    ROTATE_KEY = "rotate_key"
    """Generate a new key and register it over the link."""
    CONFIG = "config.apply"
    """Apply a version of the node's desired configuration (``wattx.nodes.desired``)."""
    SCHEDULE = "schedule"
    """Keep a day of quarter-hour setpoints on the node and run it there, also through a
    lost link (``wattx.nodes.schedule``); a newer version replaces it."""


DEVICE_COMMAND_TYPES = frozenset({"lock", "unlock", "transfer.start", "transfer.stop", "schedule"})
LEASED_DEVICE_COMMANDS = frozenset({"transfer.start"})
"""Actuations (setpoints): each holds its device only for its lease."""
LEASE_HEARTBEATS = 2
"""A lease lasts at most this many heartbeat intervals of the node."""


def with_lease(type_: str, payload: dict[str, Any], *, heartbeat_interval_s: int) -> dict[str, Any]:
    """The payload of a command as it is stored and sent: an actuation carries its lease
    (``lease_s``, at most twice the node's heartbeat interval, that by default); no
    other command may carry one."""
    if type_ != CommandType.DEVICE.value:
        return payload
    longest = LEASE_HEARTBEATS * heartbeat_interval_s
    lease = payload.get("lease_s")
    if payload.get("type") not in LEASED_DEVICE_COMMANDS:
        if lease is not None:
            raise InvalidCommandError(
                "only an actuation carries a lease", leased=sorted(LEASED_DEVICE_COMMANDS)
            )
        return payload
    if lease is None:
        return {**payload, "lease_s": longest}
    if isinstance(lease, bool) or not isinstance(lease, int) or not 1 <= lease <= longest:
        raise InvalidCommandError(
            f"lease_s is a whole number of seconds from 1 to {longest} "
            f"(twice the node's heartbeat interval)",
            lease_s=lease,
        )
    return payload


DIAGNOSTICS = frozenset({"ping", "buffer", "devices"})
_NAME = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def check_command(type_: str, payload: dict[str, Any]) -> CommandType:
    """The command's type, if it is on the allow-list and its payload fits it."""
    try:
        kind = CommandType(type_)
    except ValueError as exc:
        raise InvalidCommandError(
            f"unknown command type {type_!r}", allowed=sorted(t.value for t in CommandType)
        ) from exc
    if len(payload) > MAX_PAYLOAD_KEYS:
        raise InvalidCommandError("payload has too many keys")
    if kind is CommandType.DEVICE:
        _require_keys(payload, {"zone", "device_id", "type"}, {"payload", "lease_s"})
        for key in ("zone", "device_id"):
            if not isinstance(payload[key], str) or not _NAME.fullmatch(payload[key]):
                raise InvalidCommandError(f"{key} must match {_NAME.pattern}")
        if not isinstance(payload["type"], str) or payload["type"] not in DEVICE_COMMAND_TYPES:
            raise InvalidCommandError(
                "unknown device command type", allowed=sorted(DEVICE_COMMAND_TYPES)
            )
        if not isinstance(payload.get("payload", {}), dict):
            raise InvalidCommandError("a device command's payload is an object")
    elif kind is CommandType.DIAGNOSTICS:
        _require_keys(payload, {"name"}, set())
        if not isinstance(payload["name"], str) or payload["name"] not in DIAGNOSTICS:
            raise InvalidCommandError("unknown diagnostic", allowed=sorted(DIAGNOSTICS))
    elif kind is CommandType.CONFIG:
        check_apply_payload(payload)
    elif kind is CommandType.SCHEDULE:
        parse_schedule(payload)
    else:
        _require_keys(payload, set(), set())
    return kind


def _require_keys(payload: dict[str, Any], required: set[str], optional: set[str]) -> None:
    missing = required - payload.keys()
    unknown = payload.keys() - required - optional
    if missing or unknown:
        raise InvalidCommandError(
            "payload keys do not fit the command type",
            missing=sorted(missing),
            unknown=sorted(unknown),
        )
