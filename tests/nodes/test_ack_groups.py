"""Acks arriving together (across links) are written in one transaction, each applied
exactly once with its counters, events and audit; an ack whose group write fails is not
lost: its command keeps its earlier state and is sent again at the node's next link."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import websockets

from service.conftest import ManualClock
from wattx.config import Settings
from wattx.nodes.frames import AckFrame, CloseCode, encode, events_channel
from wattx.services.community.nodes import LinkGrant

from .conftest import Service, enrol, running
from .helpers import (
    audit_actions,
    command,
    command_state,
    count_writes,
    eventually,
    grant_for,
    link_node,
    next_command,
    stats,
    two_diagnostics_each,
)


def _published(service: Service, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    bus = service.state.nodes._bus
    original = bus.publish_to
    seen: list[tuple[str, str]] = []

    async def recording(channel: str, message: str) -> None:
        seen.append((channel, message))
        await original(channel, message)

    monkeypatch.setattr(bus, "publish_to", recording)
    return seen


async def test_acks_arriving_together_are_written_in_one_transaction_each_applied_once(
    manual_rounds: Settings, clock: ManualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(manual_rounds, clock) as service:
        nodes = [await enrol(service.api, tmp_path / str(i)) for i in range(4)]
        issued = await two_diagnostics_each(service, nodes)
        config = await service.api.http.put(
            f"/api/v1/nodes/{nodes[0].node_id}/config",
            json={"config": {"heartbeat_interval_s": 10}},
            headers=nodes[0].owner.headers,
        )
        assert config.status_code == 201, config.text
        config_id = config.json()["desired"]["command_id"]
        # Linked together: every queued command is taken and marked sent.
        grants = await asyncio.gather(*(grant_for(service, n) for n in nodes))
        for grant in grants:
            assert service.state.nodes.commands_at_link(grant)

        acks: list[tuple[LinkGrant, AckFrame]] = []
        for grant in grants:
            applied, refused = issued[grant.node_id]
            acks += [
                (grant, AckFrame(applied, "node_durable", None, None)),
                (grant, AckFrame(applied, "applied", None, {"ok": True})),
                (grant, AckFrame(applied, "applied", None, {"ok": True})),  # repeated
                (grant, AckFrame(refused, "rejected", "no such diagnostic", None)),
                (grant, AckFrame(refused, "node_durable", None, None)),  # late: no-op
            ]
        first, second = grants[0], grants[1]
        acks += [
            (first, AckFrame(config_id, "applied", None, {"version": 1})),
            (second, AckFrame(issued[first.node_id][0], "applied", None, None)),  # not its own
            (second, AckFrame("no-such-command", "node_durable", None, None)),
        ]
        writes = count_writes(service, monkeypatch)
        events = _published(service, monkeypatch)
        answers = await asyncio.gather(
            *(service.state.nodes.acknowledge(g, f, source="127.0.0.1") for g, f in acks)
        )

        assert writes[0] == 1  # one transaction for all of them
        assert answers == [True] * (len(acks) - 2) + [False, False]
        for node in nodes:
            applied, refused = issued[node.node_id]
            row = await command_state(service, node.owner, node.node_id, applied)
            assert (row["state"], row["result"]) == ("applied", {"ok": True})
            assert row["durable_at"] is not None
            row = await command_state(service, node.owner, node.node_id, refused)
            assert (row["state"], row["detail"]) == ("rejected", "no such diagnostic")
            counts = await stats(service, node.owner, node.node_id)
            assert counts["commands_applied"] == (2 if node is nodes[0] else 1)
            assert counts["commands_failed"] == 1
            assert counts["frames_rejected"] == (2 if node is nodes[1] else 0)
            finished = sorted(
                json.loads(message)["id"]
                for channel, message in events
                if channel == events_channel(node.node_id)
            )
            assert finished == sorted(
                [applied, refused, *([config_id] if node is nodes[0] else [])]
            )
        actions = [a["action"] for a in await audit_actions(service)]
        assert actions.count("node.config.applied") == 1


async def test_an_ack_whose_group_write_fails_is_not_lost(
    manual_rounds: Settings, clock: ManualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(manual_rounds, clock) as service:
        node = await enrol(service.api, tmp_path)
        ws = await link_node(service, node)
        issued = await command(
            service, node.owner, node.node_id, type="diagnostics", payload={"name": "ping"}
        )
        sent = await next_command(ws)
        assert sent["id"] == issued["id"]
        assert await service.state.nodes.flush_sent() == 1

        db = service.state.db
        original = db.write
        failures = [0]

        @asynccontextmanager
        async def failing_acks() -> AsyncIterator[Any]:
            # The ack group's transaction does its work, then fails as it ends.
            async with original() as session:
                yield session
                task = asyncio.current_task()
                if task is not None and task.get_name() == "node-acks":
                    failures[0] += 1
                    raise RuntimeError("the database went away")

        monkeypatch.setattr(db, "write", failing_acks)
        await ws.send(encode("ack", id=issued["id"], state="node_durable"))
        # The node is not told its ack was taken: the link ends, nothing was written.
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == CloseCode.GOING_AWAY
        assert failures[0] == 1
        row = await command_state(service, node.owner, node.node_id, issued["id"])
        assert (row["state"], row["durable_at"]) == ("sent", None)
        monkeypatch.setattr(db, "write", original)

        async def unlinked() -> bool:
            return not (await stats(service, node.owner, node.node_id))["linked"]

        await eventually(unlinked)
        # Sent again at the next link, and the node's answers now count, once.
        ws = await link_node(service, node)
        assert (await next_command(ws))["id"] == issued["id"]
        await ws.send(encode("ack", id=issued["id"], state="node_durable"))
        await ws.send(encode("ack", id=issued["id"], state="applied", result={"ok": True}))

        async def applied() -> bool:
            row = await command_state(service, node.owner, node.node_id, issued["id"])
            return bool(row["state"] == "applied")

        await eventually(applied)
        assert (await stats(service, node.owner, node.node_id))["commands_applied"] == 1
        await ws.close()
