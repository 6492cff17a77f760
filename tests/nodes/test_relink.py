"""A fleet linking again costs no transaction per link: the commands due to the nodes
of a group are taken with the group's write, links that end together are recorded in
one write, and an outcome lost with a link (the service killed between the node's
ack and its write) is asked for again at the next link, never run twice."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from service.conftest import ManualClock
from wattx.config import Settings
from wattx.nodes.frames import encode

from .conftest import enrol, running
from .helpers import (
    command,
    command_state,
    count_writes,
    eventually,
    link_node,
    next_command,
    stats,
    two_diagnostics_each,
)


async def test_nodes_linking_together_get_their_due_commands_from_the_groups_one_write(
    manual_rounds: Settings,
    clock: ManualClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running(manual_rounds, clock) as service:
        nodes = [await enrol(service.api, tmp_path / str(i)) for i in range(4)]
        queued = await two_diagnostics_each(service, nodes)
        taken: list[str] = []
        original = service.state.nodes.take_due_commands

        async def take(node_id: str) -> list[dict[str, Any]]:
            taken.append(node_id)
            return await original(node_id)

        monkeypatch.setattr(service.state.nodes, "take_due_commands", take)
        writes = count_writes(service, monkeypatch)
        links = await asyncio.gather(*(link_node(service, n) for n in nodes))
        for node, ws in zip(nodes, links, strict=True):
            got = {(await next_command(ws))["id"] for _ in range(2)}
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
        ws = await link_node(service, node)
        issued = await command(
            service,
            node.owner,
            node.node_id,
            type="diagnostics",
            payload={"name": "ping"},
            ttl_s=60,
        )
        sent = await next_command(ws)
        assert sent["id"] == issued["id"]
        await ws.send(encode("ack", id=issued["id"], state="node_durable"))

        async def durable() -> bool:
            row = await command_state(service, node.owner, node.node_id, issued["id"])
            return bool(row["state"] == "node_durable")

        await eventually(durable)
        # The node ran it and its "applied" went out, but the link died with it.
        await ws.close()
        clock.advance(120)  # past the command's lifetime: durable, so it does not expire
        ws = await link_node(service, node)
        again = await next_command(ws)
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
        ws = await link_node(service, node)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), timeout=1.0)
        await ws.close()
