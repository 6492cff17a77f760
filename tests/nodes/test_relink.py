"""A fleet linking again costs no transaction per link: the commands due to the nodes
of a group are taken with the group's write, links that end together are recorded in
one write, and an outcome lost with a link (the service killed between the node's
ack and its write) is asked for again at the next link, never run twice."""

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
from wattx.nodes import challenge
from wattx.nodes.frames import encode

from .conftest import Enrolled, Service, enrol, running
from .helpers import command, command_state, eventually, stats


@pytest.fixture
def manual_rounds(settings: Settings) -> Settings:
    # Nothing sweeps for due commands and no round runs: only the link itself acts.
    return settings.model_copy(
        update={"node_heartbeat_flush_s": 3600.0, "node_command_poll_s": 3600.0}
    )


async def _link(service: Service, node: Enrolled) -> Any:
    link_url = service.url.replace("http://", "ws://") + "/api/v1/nodes/link"
    ws = await websockets.connect(link_url)
    hello = json.loads(await ws.recv())
    signature = challenge.sign(challenge.link_message(node.node_id, hello["nonce"]), node.seed)
    await ws.send(encode("auth", node_id=node.node_id, signature=signature))
    assert json.loads(await ws.recv())["type"] == "welcome"
    return ws


async def _next_command(ws: Any) -> dict[str, Any]:
    frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
    assert frame["type"] == "command", frame
    command: dict[str, Any] = frame["command"]
    return command


def _count_writes(service: Service, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    db = service.state.db
    original = db.write
    writes = [0]

    @asynccontextmanager
    async def counting() -> AsyncIterator[Any]:
        writes[0] += 1
        async with original() as session:
            yield session

    monkeypatch.setattr(db, "write", counting)
    return writes


async def test_nodes_linking_together_get_their_due_commands_from_the_groups_one_write(
    manual_rounds: Settings,
    clock: ManualClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running(manual_rounds, clock) as service:
        nodes = [await enrol(service.api, tmp_path / str(i)) for i in range(4)]
        queued = {
            n.node_id: [
                (await command(service, n.owner, n.node_id, type="diagnostics", payload=p))["id"]
                for p in ({"name": "ping"}, {"name": "buffer"})
            ]
            for n in nodes
        }
        taken: list[str] = []
        original = service.state.nodes.take_due_commands

        async def take(node_id: str) -> list[dict[str, Any]]:
            taken.append(node_id)
            return await original(node_id)

        monkeypatch.setattr(service.state.nodes, "take_due_commands", take)
        writes = _count_writes(service, monkeypatch)
        links = await asyncio.gather(*(_link(service, n) for n in nodes))
        for node, ws in zip(nodes, links, strict=True):
            got = {(await _next_command(ws))["id"] for _ in range(2)}
            assert got == set(queued[node.node_id])
        # One write for the links that came together (at most one more for a straggler),
        # none per link to look for its commands.
        assert taken == []
        assert 1 <= writes[0] <= 2
        for node in nodes:
            for command_id in queued[node.node_id]:
                row = await command_state(service, node.owner, node.node_id, command_id)
                assert (row["state"], row["retries"]) == ("sent", 1)

        writes[0] = 0
        await asyncio.gather(*(ws.close() for ws in links))

        async def all_unlinked() -> bool:
            for node in nodes:
                if (await stats(service, node.owner, node.node_id))["linked"]:
                    return False
            return True

        await eventually(all_unlinked)
        assert 1 <= writes[0] <= 2  # the links that ended together: one write


async def test_an_outcome_lost_with_the_link_is_asked_again_at_the_next_link(
    manual_rounds: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    async with running(manual_rounds, clock) as service:
        node = await enrol(service.api, tmp_path)
        ws = await _link(service, node)
        issued = await command(
            service,
            node.owner,
            node.node_id,
            type="diagnostics",
            payload={"name": "ping"},
            ttl_s=60,
        )
        sent = await _next_command(ws)
        assert sent["id"] == issued["id"]
        await ws.send(encode("ack", id=issued["id"], state="node_durable"))

        async def durable() -> bool:
            row = await command_state(service, node.owner, node.node_id, issued["id"])
            return bool(row["state"] == "node_durable")

        await eventually(durable)
        # The node ran it and its "applied" went out, but the link died with it.
        await ws.close()
        clock.advance(120)  # past the command's lifetime: durable, so it does not expire
        ws = await _link(service, node)
        again = await _next_command(ws)
        assert again == sent  # the same command, by id: the node answers from its store
        await ws.send(encode("ack", id=issued["id"], state="node_durable"))
        await ws.send(encode("ack", id=issued["id"], state="applied", result={"ok": True}))

        async def applied() -> bool:
            row = await command_state(service, node.owner, node.node_id, issued["id"])
            return bool(row["state"] == "applied")

        await eventually(applied)
        row = await command_state(service, node.owner, node.node_id, issued["id"])
        assert row["result"] == {"ok": True}
        assert (await stats(service, node.owner, node.node_id))["commands_applied"] == 1
        # Finished: a later link is not asked again.
        await ws.close()
        ws = await _link(service, node)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), timeout=1.0)
        await ws.close()
