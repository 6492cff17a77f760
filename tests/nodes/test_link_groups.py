"""Links arriving together are checked in one read and recorded in one write, every
rule kept; a command queued for a linked node is pushed to it at once, its ``sent``
mark written with the next round; the daemon's reconnect waits never exceed the cap."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.conftest import ManualClock
from wattx.config import Settings
from wattx.nodes import challenge
from wattx.nodes.backoff import next_step_s, reconnect_wait_s
from wattx.nodes.challenge import new_nonce
from wattx.nodes.errors import NodeAuthenticationError, NodeRevokedError
from wattx.nodes.frames import encode
from wattx.store.models_nodes import NodeRow

from .conftest import Enrolled, Service, enrol, running
from .helpers import audit_actions, command, command_state, count_writes, eventually, link_node


async def test_links_arriving_together_are_checked_in_one_read_and_recorded_in_one_write(
    service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes = [await enrol(service.api, tmp_path / str(i)) for i in range(6)]
    revoked, forger, good = nodes[0], nodes[1], nodes[2:]
    op = await service.api.operator()
    response = await service.api.http.delete(f"/api/v1/nodes/{revoked.node_id}", headers=op.headers)
    assert response.status_code == 200, response.text
    writes = count_writes(service, monkeypatch)

    def answer(node: Enrolled, seed: bytes) -> Any:
        nonce = new_nonce()
        signature = challenge.sign(challenge.link_message(node.node_id, nonce), seed)
        return service.state.nodes.authenticate_link(
            node.node_id, nonce, signature, source="127.0.0.1"
        )

    outcomes = await asyncio.gather(
        answer(revoked, revoked.seed),
        answer(forger, good[0].seed),  # signed with another node's key
        *(answer(n, n.seed) for n in good),
        return_exceptions=True,
    )
    assert isinstance(outcomes[0], NodeRevokedError)
    assert isinstance(outcomes[1], NodeAuthenticationError)
    grants = outcomes[2:]
    assert [g.node_id for g in grants] == [n.node_id for n in good]  # type: ignore[union-attr]
    # One write for the four links, one audit row (its own write) per refusal.
    assert writes[0] == 3
    async with service.state.db.read() as session:
        rows = {
            r.id: r.link_id
            for r in (
                await session.execute(
                    select(NodeRow.id, NodeRow.link_id).where(
                        NodeRow.id.in_([n.node_id for n in nodes])
                    )
                )
            ).all()
        }
    assert rows[revoked.node_id] is None
    assert rows[forger.node_id] is None
    assert {rows[g.node_id] for g in grants} == {g.link_id for g in grants}  # type: ignore[union-attr]
    refused = [
        (e["target"], e["after"]["refused"])
        for e in await audit_actions(service)
        if e["action"] == "node.link.refused"
    ]
    assert (f"node:{revoked.node_id}", "node revoked") in refused
    assert (f"node:{forger.node_id}", "bad signature") in refused


async def test_a_queued_command_is_pushed_to_its_linked_node_and_marked_sent_with_the_round(
    manual_rounds: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    async with running(manual_rounds, clock) as service:
        node = await enrol(service.api, tmp_path)
        nodes = service.state.nodes
        ws = await link_node(service, node)
        taken: list[str] = []
        original = nodes.take_due_commands

        async def take(node_id: str) -> list[dict[str, Any]]:
            taken.append(node_id)
            return await original(node_id)

        nodes.take_due_commands = take  # type: ignore[method-assign]
        first = await command(
            service, node.owner, node.node_id, type="diagnostics", payload={"name": "ping"}
        )
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        assert (frame["type"], frame["command"]["id"]) == ("command", first["id"])
        assert taken == []  # sent as it came over the bus, no transaction of its own
        row = await command_state(service, node.owner, node.node_id, first["id"])
        assert (row["state"], row["retries"]) == ("queued", 0)
        assert await nodes.flush_sent() == 1
        row = await command_state(service, node.owner, node.node_id, first["id"])
        assert (row["state"], row["retries"]) == ("sent", 1)
        await ws.send(encode("ack", id=first["id"], state="node_durable"))

        # Acked before its round: the ack's state stays, the send is still recorded.
        second = await command(
            service, node.owner, node.node_id, type="diagnostics", payload={"name": "ping"}
        )
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        assert frame["command"]["id"] == second["id"]
        await ws.send(encode("ack", id=second["id"], state="node_durable"))

        async def durable() -> bool:
            row = await command_state(service, node.owner, node.node_id, second["id"])
            return bool(row["state"] == "node_durable")

        await eventually(durable)
        assert await nodes.flush_sent() == 1
        assert await nodes.flush_sent() == 0
        for command_id in (first["id"], second["id"]):
            row = await command_state(service, node.owner, node.node_id, command_id)
            assert (row["state"], row["retries"]) == ("node_durable", 1)
            assert row["durable_at"] is not None
            assert row["sent_at"] is not None
        assert taken == []
        await ws.close()


def test_reconnect_waits_are_jittered_below_the_step_and_never_above_the_cap() -> None:
    rng = random.Random(17)
    step = 0.5
    steps = []
    for _ in range(10):
        steps.append(step)
        step = next_step_s(step, cap_s=30.0)
    assert steps[:4] == [0.5, 1.0, 2.0, 4.0]
    assert steps[-1] == 30.0
    waits = [reconnect_wait_s(30.0, cap_s=30.0, rng=rng) for _ in range(2000)]
    assert all(0.0 <= w <= 30.0 for w in waits)
    # A fleet at the cap comes back spread over it, not all near the cap.
    assert 13.0 < sum(waits) / len(waits) < 17.0
    assert sum(w < 10.0 for w in waits) > 500
    assert reconnect_wait_s(100.0, cap_s=30.0, rng=rng) <= 30.0
    assert reconnect_wait_s(1.0, cap_s=30.0, rng=rng) <= 1.0
