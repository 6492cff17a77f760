"""Node health from its last heartbeat: healthy, unhealthy after 3 missed, offline after 5."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

UNHEALTHY_AFTER_MISSED = 3
OFFLINE_AFTER_MISSED = 5


class NodeHealth(StrEnum):
    PENDING = "pending"
    """Enrolled, never heard from."""
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    OFFLINE = "offline"
    REVOKED = "revoked"


def missed_heartbeats(last_heartbeat_at: datetime, now: datetime, interval_s: int) -> int:
    """Whole heartbeat intervals elapsed since the last heartbeat: 90 s at a 30 s interval
    is 3 missed (unhealthy), 150 s is 5 (offline)."""
    elapsed = (now - last_heartbeat_at).total_seconds()
    return max(0, int(elapsed // interval_s))


def node_health(
    *, revoked: bool, last_heartbeat_at: datetime | None, now: datetime, interval_s: int
) -> NodeHealth:
    if revoked:
        return NodeHealth.REVOKED
    if last_heartbeat_at is None:
        return NodeHealth.PENDING
    missed = missed_heartbeats(last_heartbeat_at, now, interval_s)
    if missed >= OFFLINE_AFTER_MISSED:
        return NodeHealth.OFFLINE
    if missed >= UNHEALTHY_AFTER_MISSED:
        return NodeHealth.UNHEALTHY
    return NodeHealth.HEALTHY
