"""Heartbeats are written in batches: one row per node per round, the newest heartbeat
wins, a failed round keeps its heartbeats, and a stopping service writes what it took."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import websockets
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from service.conftest import ManualClock
from wattx.config import Settings
from wattx.nodes import challenge
from wattx.nodes.frames import encode

from .conftest import Enrolled, Service, enrol, running
from .helpers import eventually, sqlite_only, stats


@pytest.fixture
def slow_flush(settings: Settings) -> Settings:
    # Only the test (or the service stopping) writes the heartbeats.
    return settings.model_copy(update={"node_heartbeat_flush_s": 3600.0})


async def _link(service: Service, node: Enrolled) -> Any:
    link_url = service.url.replace("http://", "ws://") + "/api/v1/nodes/link"
    ws = await websockets.connect(link_url)
    hello = json.loads(await ws.recv())
    signature = challenge.sign(challenge.link_message(node.node_id, hello["nonce"]), node.seed)
    await ws.send(encode("auth", node_id=node.node_id, signature=signature))
    assert json.loads(await ws.recv())["type"] == "welcome"
    return ws


async def _beat(ws: Any, uptime_s: int) -> None:
    await ws.send(
        encode("heartbeat", uptime_s=uptime_s, version="v", buffer_depth=uptime_s, devices={})
    )


async def test_heartbeats_are_written_together_and_the_newest_of_a_node_wins(
    slow_flush: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    async with running(slow_flush, clock) as service:
        nodes = [await enrol(service.api, tmp_path / str(i)) for i in range(3)]
        links = [await _link(service, n) for n in nodes]
        for ws in links:
            await _beat(ws, 1)
            await _beat(ws, 2)

        async def all_taken() -> bool:
            return service.state.nodes.pending_heartbeats == 3

        await eventually(all_taken)
        # Taken, published, not yet written.
        for node in nodes:
            body = await stats(service, node.owner, node.node_id)
            assert body["last_heartbeat_at"] is None
            assert body["health"] == "pending"
        assert await service.state.nodes.flush_heartbeats() == 3
        assert service.state.nodes.pending_heartbeats == 0
        for node in nodes:
            body = await stats(service, node.owner, node.node_id)
            assert body["uptime_s"] == 2
            assert body["buffer_depth"] == 2
            assert body["health"] == "healthy"
        assert await service.state.nodes.flush_heartbeats() == 0
        for ws in links:
            await ws.close()


@sqlite_only
async def test_a_failed_round_keeps_its_heartbeats_for_the_next(
    slow_flush: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    async with running(slow_flush, clock) as service:
        node = await enrol(service.api, tmp_path)
        ws = await _link(service, node)
        await _beat(ws, 7)

        async def taken() -> bool:
            return service.state.nodes.pending_heartbeats == 1

        await eventually(taken)
        nodes = service.state.nodes
        # A real failure of the write: the database refuses updates of nodes for a while.
        async with service.state.db.write() as session:
            await session.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE UPDATE ON nodes "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
            )
        with pytest.raises(IntegrityError, match="refused by the test"):
            await nodes.flush_heartbeats()
        async with service.state.db.write() as session:
            await session.execute(text("DROP TRIGGER refuse"))
        assert nodes.pending_heartbeats == 1
        assert await nodes.flush_heartbeats() == 1
        assert (await stats(service, node.owner, node.node_id))["uptime_s"] == 7
        await ws.close()


async def test_a_stopping_service_writes_the_heartbeats_it_took(
    slow_flush: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    async with running(slow_flush, clock) as service:
        node = await enrol(service.api, tmp_path)
        ws = await _link(service, node)
        await _beat(ws, 42)

        async def taken() -> bool:
            return service.state.nodes.pending_heartbeats == 1

        await eventually(taken)
    await ws.close()
    async with running(slow_flush, clock) as again:
        body = await stats(again, node.owner, node.node_id)
        assert body["uptime_s"] == 42
        assert body["last_heartbeat_at"] is not None
