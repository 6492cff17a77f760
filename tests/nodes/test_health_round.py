"""The health round reads only the nodes whose health may have changed; it must still
leave every node with the health :func:`node_health` gives it, and count them all.

Nodes are written straight into the database in every combination of stored health,
status, heartbeat interval and time since the last heartbeat (around each bound, and
in the future: a node's clock may run ahead), then one round runs."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta

from sqlalchemy import insert, select

from service.client import ApiClient
from service.conftest import ManualClock
from wattx.api.state import AppState
from wattx.nodes.health import NodeHealth, node_health
from wattx.services.principal import Role
from wattx.store.models_nodes import NodeRow

INTERVALS_S = (10, 30)
# Seconds since the last heartbeat, in heartbeat intervals (None: never heard from).
AGES = (None, -0.5, 0, 1, 2.9, 2.99, 3, 3.01, 4, 4.99, 5, 5.01, 6, 100)


async def test_every_node_gets_the_health_its_heartbeats_give_it(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    owner = await api.signup(Role.NODE_OPERATOR)
    now = clock.now()
    rows = []
    combinations = itertools.product(
        NodeHealth, ("active", "revoked"), INTERVALS_S, AGES, (0, 999_999)
    )
    for i, (stored, status, interval_s, age, micros) in enumerate(combinations):
        last = (
            None
            if age is None
            else now - timedelta(seconds=age * interval_s, microseconds=micros if age else 0)
        )
        rows.append(
            {
                "id": f"health-{i:05d}",
                "name": f"node {i}",
                "owner_id": owner.id,
                "status": status,
                "health": stored.value,
                "created_at": now - timedelta(days=1),
                "revoked_at": None,
                "heartbeat_interval_s": interval_s,
                "last_heartbeat_at": last,
                "linked_at": None,
                "link_id": None,
                "uptime_s": None,
                "software_version": None,
                "buffer_depth": None,
                "device_summary": "{}",
                "readings_relayed": 0,
                "batches_rejected": 0,
                "foreign_batches": 0,
                "frames_rejected": 0,
                "commands_applied": 0,
                "commands_failed": 0,
            }
        )
    async with state.db.write() as session:
        await session.execute(insert(NodeRow), rows)

    counts = await state.nodes.evaluate_health()

    expected = {
        row["id"]: node_health(
            revoked=row["status"] == "revoked",
            last_heartbeat_at=row["last_heartbeat_at"],
            now=now,
            interval_s=row["heartbeat_interval_s"],
        )
        for row in rows
    }
    async with state.db.read() as session:
        stored_now = dict((await session.execute(select(NodeRow.id, NodeRow.health))).all())
    wrong = {
        node_id: (stored_now[node_id], health.value)
        for node_id, health in expected.items()
        if stored_now[node_id] != health.value
    }
    assert wrong == {}
    assert counts == {health: Counter(expected.values())[health] for health in NodeHealth}
    # A second round finds nothing to change and counts the same.
    assert await state.nodes.evaluate_health() == counts
