"""Helpers shared by the edge-node tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import aiomqtt
import pytest
import websockets

from service.client import User
from wattx.nodes import challenge
from wattx.nodes.challenge import new_nonce
from wattx.nodes.daemon.runner import NodeDaemon, NodeStoppedError
from wattx.nodes.daemon.stopping import stop_tasks
from wattx.nodes.frames import encode
from wattx.services.community.nodes import LinkGrant

from .conftest import Enrolled, Service

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def eventually(check: Callable[[], Awaitable[bool]], *, within_s: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@asynccontextmanager
async def daemon_running(
    node: Enrolled, service: Service, **changes: Any
) -> AsyncIterator[NodeDaemon]:
    daemon = NodeDaemon(replace(node.config, server=service.url, **changes), backoff_initial_s=0.1)
    task = asyncio.create_task(daemon.run())
    try:
        async with asyncio.timeout(15):
            await daemon.linked.wait()
        yield daemon
    finally:
        await stop_tasks([task])
        failure = None if task.cancelled() else task.exception()
        if failure is not None and not isinstance(failure, NodeStoppedError):
            raise failure


async def command(service: Service, user: User, node_id: str, **body: Any) -> dict[str, Any]:
    response = await service.api.http.post(
        f"/api/v1/nodes/{node_id}/commands", json=body, headers=user.headers
    )
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def command_state(
    service: Service, user: User, node_id: str, command_id: str
) -> dict[str, Any]:
    response = await service.api.http.get(
        f"/api/v1/nodes/{node_id}/commands/{command_id}", headers=user.headers
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def stats(service: Service, user: User, node_id: str) -> dict[str, Any]:
    response = await service.api.http.get(f"/api/v1/nodes/{node_id}/stats", headers=user.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def audit_actions(service: Service) -> list[dict[str, Any]]:
    op = await service.api.operator()
    response = await service.api.http.get("/api/v1/audit", headers=op.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@contextlib.asynccontextmanager
async def applying_device(prefix: str) -> AsyncIterator[list[dict[str, Any]]]:
    """Battery bat-1 in zone main: applies every command and keeps what it got."""
    got: list[dict[str, Any]] = []
    async with aiomqtt.Client("127.0.0.1", 1883) as client:
        await client.subscribe(f"{prefix}/main/dev/bat-1/cmd", qos=1)

        async def serve() -> None:
            async for message in client.messages:
                envelope = json.loads(message.payload)  # type: ignore[arg-type]
                got.append(envelope)
                ack = {"id": envelope["id"], "status": "applied"}
                await client.publish(f"{prefix}/main/dev/bat-1/ack", json.dumps(ack), qos=1)

        task = asyncio.create_task(serve())
        try:
            yield got
        finally:
            # The client's publish may drop a cancellation (see stop_tasks).
            await stop_tasks([task])


async def link_node(service: Service, node: Enrolled) -> Any:
    """A bare WebSocket link of ``node``, authenticated by its signed challenge."""
    link_url = service.url.replace("http://", "ws://") + "/api/v1/nodes/link"
    ws = await websockets.connect(link_url)
    hello = json.loads(await ws.recv())
    signature = challenge.sign(challenge.link_message(node.node_id, hello["nonce"]), node.seed)
    await ws.send(encode("auth", node_id=node.node_id, signature=signature))
    assert json.loads(await ws.recv())["type"] == "welcome"
    return ws


async def next_command(ws: Any) -> dict[str, Any]:
    """The next frame on a bare link, which must be a command."""
    frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
    assert frame["type"] == "command", frame
    sent: dict[str, Any] = frame["command"]
    return sent


def count_writes(service: Service, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the service's write transactions from now on (in the list's one item)."""
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


async def two_diagnostics_each(service: Service, nodes: list[Enrolled]) -> dict[str, list[str]]:
    """Queue a ``ping`` and a ``buffer`` diagnostics command for each node: node id → the
    two command ids, in that order."""
    return {
        n.node_id: [
            (await command(service, n.owner, n.node_id, type="diagnostics", payload=p))["id"]
            for p in ({"name": "ping"}, {"name": "buffer"})
        ]
        for n in nodes
    }


async def grant_for(service: Service, node: Enrolled) -> LinkGrant:
    """A link grant for ``node``, as the link's signed challenge gets it (no socket)."""
    nonce = new_nonce()
    signature = challenge.sign(challenge.link_message(node.node_id, nonce), node.seed)
    return await service.state.nodes.authenticate_link(
        node.node_id, nonce, signature, source="127.0.0.1"
    )
