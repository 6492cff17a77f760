"""Node incentives, pure: incentive periods, uptime from heartbeat slots, the score and
reward formula of the NetworkIncentives contract, and when a node is slashed
(docs/settlement.md, "Node incentives" and "Node incentives in the service")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from wattx.incentives.errors import (
    MAX_REPORTS,
    IncentivePeriodOpenError,
    IncentiveReportTooLargeError,
    NodeNotOwnedError,
    SlashNotFoundError,
)

__all__ = [
    "BPS",
    "FAILED_COMMANDS",
    "MAX_REPORTS",
    "TAMPERED_BATCH",
    "Activity",
    "IncentivePeriodOpenError",
    "IncentiveReportTooLargeError",
    "IncentiveRules",
    "NodeNotOwnedError",
    "PeriodClock",
    "SlashNotFoundError",
    "heartbeat_slot",
    "node_key",
    "rewards",
    "slash_reasons",
    "uptime_bps",
]

BPS = 10_000
TAMPERED_BATCH = "relayed a tampered reading batch"
FAILED_COMMANDS = "failed commands past the threshold"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class PeriodClock:
    """Incentive periods: period ``n`` covers ``[n × period_s, (n + 1) × period_s)`` seconds
    since 1970-01-01 UTC, so every process numbers them alike and they only increase."""

    period_s: int

    def period_of(self, at: datetime) -> int:
        return int((at - _EPOCH).total_seconds()) // self.period_s

    def start(self, period: int) -> datetime:
        return _EPOCH + timedelta(seconds=period * self.period_s)

    def end(self, period: int) -> datetime:
        return self.start(period + 1)


def heartbeat_slot(at: datetime, period_start: datetime, interval_s: int) -> int:
    """The heartbeat interval of the period ``at`` falls in (0 for the first)."""
    return int((at - period_start).total_seconds()) // interval_s


def uptime_bps(up_slots: int, interval_s: int, period_s: int) -> int:
    """Share of the period covered by heartbeat intervals that had a heartbeat, in basis
    points (at most 10,000)."""
    return min(BPS, up_slots * interval_s * BPS // period_s)


@dataclass(frozen=True, slots=True)
class Activity:
    """What a node did in one period, as the service measured it."""

    node_id: str
    uptime_bps: int
    readings: int
    commands_done: int
    commands_failed: int = 0
    tampered_batches: int = 0


@dataclass(frozen=True, slots=True)
class IncentiveRules:
    """The governed values the contract pays by (``incentive_*`` parameters)."""

    budget_per_period: int
    cap_per_node: int
    min_bond: int
    uptime_weight: int
    reading_weight: int
    command_weight: int

    @classmethod
    def of(cls, values: Mapping[str, int]) -> IncentiveRules:
        return cls(
            budget_per_period=values["incentive_budget_per_period"],
            cap_per_node=values["incentive_cap_per_node"],
            min_bond=values["incentive_min_bond"],
            uptime_weight=values["incentive_uptime_weight"],
            reading_weight=values["incentive_reading_weight"],
            command_weight=values["incentive_command_weight"],
        )

    def score(self, activity: Activity, bond: int) -> int:
        if bond < self.min_bond:
            return 0
        return (
            activity.uptime_bps * self.uptime_weight
            + activity.readings * self.reading_weight
            + activity.commands_done * self.command_weight
        )


def rewards(
    rules: IncentiveRules, pool: int, rows: Sequence[tuple[Activity, int]]
) -> dict[str, int]:
    """Each node's reward for one period, as ``report_period`` computes it: ``rows`` are
    (activity, bond) pairs."""
    scores = {a.node_id: rules.score(a, bond) for a, bond in rows}
    total = sum(scores.values())
    budget = min(rules.budget_per_period, pool)
    if total == 0:
        return dict.fromkeys(scores, 0)
    return {n: min(rules.cap_per_node, budget * s // total) for n, s in scores.items()}


def slash_reasons(activity: Activity, failed_command_threshold: int) -> list[str]:
    """Why the node is slashed for the period, if at all: a relayed batch whose meter
    signature did not verify (forged or tampered on the way), or at least
    ``failed_command_threshold`` failed commands."""
    reasons = []
    if activity.tampered_batches > 0:
        reasons.append(TAMPERED_BATCH)
    if activity.commands_failed >= failed_command_threshold:
        reasons.append(FAILED_COMMANDS)
    return reasons


def node_key(node_id: str) -> bytes:
    """A node id as the contract's ``bytes32`` node key (utf-8, zero-padded)."""
    raw = node_id.encode("utf-8")
    if len(raw) > 32:
        raise ValueError(f"node id {node_id!r} is longer than 32 bytes")
    return raw.ljust(32, b"\0")
