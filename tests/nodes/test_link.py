"""The link end to end: a real service on a port, the real daemon dialling it."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import websockets
from sqlalchemy import update
from websockets.exceptions import ConnectionClosed

from wattx.bus.events import Event, EventType
from wattx.nodes import challenge
from wattx.nodes.daemon.config import KEY_NAME, read_key
from wattx.nodes.daemon.runner import NodeDaemon, NodeStoppedError
from wattx.nodes.frames import CloseCode, encode
from wattx.services.principal import Role
from wattx.store.models_nodes import NodeRow

from .conftest import Enrolled, Service, enrol
from .helpers import (
    audit_actions,
    command,
    command_state,
    daemon_running,
    eventually,
    sqlite_only,
    stats,
)


async def test_enrol_link_heartbeat_command_round_trip(service: Service, tmp_path: Path) -> None:
    node = await enrol(service.api, tmp_path)
    async with daemon_running(node, service):

        async def heartbeat_seen() -> bool:
            body = await stats(service, node.owner, node.node_id)
            return body["last_heartbeat_at"] is not None

        await eventually(heartbeat_seen)
        body = await stats(service, node.owner, node.node_id)
        assert (body["health"], body["linked"], body["buffer_depth"]) == ("healthy", True, 0)
        detail = await service.api.http.get(
            f"/api/v1/nodes/{node.node_id}", headers=node.owner.headers
        )
        assert detail.json()["software_version"].startswith("wattx-node/")

        issued = await command(
            service, node.owner, node.node_id, type="diagnostics", payload={"name": "ping"}
        )
        assert issued["state"] == "queued"

        async def applied() -> bool:
            row = await command_state(service, node.owner, node.node_id, issued["id"])
            return bool(row["state"] == "applied")

        await eventually(applied)

        # A command pushed as it was queued is marked sent (one try) by the heartbeat
        # flush's next round, which may come after the node's ack on a busy machine.
        async def sent_mark_written() -> bool:
            row = await command_state(service, node.owner, node.node_id, issued["id"])
            return bool(row["retries"] > 0)

        await eventually(sent_mark_written)
        row = await command_state(service, node.owner, node.node_id, issued["id"])
        assert row["result"]["pong"] is True
        assert row["durable_at"] is not None
        assert row["retries"] == 1
        assert (await stats(service, node.owner, node.node_id))["commands_applied"] == 1
    actions = [e["action"] for e in await audit_actions(service)]
    assert {"node.registration_token.created", "node.enrolled", "node.command.issued"} <= set(
        actions
    )


async def test_health_turns_unhealthy_after_three_missed_heartbeats_and_offline_after_five(
    service: Service, tmp_path: Path, clock: Any
) -> None:
    node = await enrol(service.api, tmp_path)
    async with daemon_running(node, service):
        await eventually(
            lambda: _has_heartbeat(service, node)  # type: ignore[arg-type]
        )
    health = []
    for seconds in (60, 30, 60):
        clock.advance(seconds)
        await service.state.nodes.evaluate_health()
        health.append((await stats(service, node.owner, node.node_id))["health"])
    assert health == ["healthy", "unhealthy", "offline"]


async def _has_heartbeat(service: Service, node: Enrolled) -> bool:
    return (await stats(service, node.owner, node.node_id))["last_heartbeat_at"] is not None


@sqlite_only
async def test_a_wrong_signature_is_refused_with_a_close_code_and_an_audit_row(
    service: Service, tmp_path: Path
) -> None:
    node = await enrol(service.api, tmp_path)
    link_url = service.url.replace("http://", "ws://") + "/api/v1/nodes/link"
    async with websockets.connect(link_url) as ws:
        hello = json.loads(await ws.recv())
        assert (hello["v"], hello["type"]) == (1, "challenge")
        stranger = bytes(32)
        signature = challenge.sign(challenge.link_message(node.node_id, hello["nonce"]), stranger)
        await ws.send(encode("auth", node_id=node.node_id, signature=signature))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CloseCode.AUTHENTICATION_FAILED
    refused = [e for e in await audit_actions(service) if e["action"] == "node.link.refused"]
    assert refused[0]["target"] == f"node:{node.node_id}"
    assert refused[0]["after"] == {"refused": "bad signature"}
    assert not (await stats(service, node.owner, node.node_id))["linked"]


@sqlite_only
@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", CloseCode.MALFORMED_FRAME),
        ('{"v": 2, "type": "heartbeat"}', CloseCode.UNSUPPORTED_VERSION),
        ('{"v": 1, "type": "heartbeat", "uptime_s": -1}', CloseCode.MALFORMED_FRAME),
        (
            '{"v": 1, "type": "heartbeat", "uptime_s": 1, "version": "x", "buffer_depth": 0, '
            '"devices": {}, "extra": 1}',
            CloseCode.MALFORMED_FRAME,
        ),
        ('{"v": 1, "type": "heartbeat", "pad": "' + "x" * 70_000 + '"}', CloseCode.FRAME_TOO_LARGE),
    ],
)
async def test_a_bad_frame_closes_the_link_with_its_code_and_changes_nothing_but_a_counter(
    service: Service, tmp_path: Path, frame: str, code: int
) -> None:
    node = await enrol(service.api, tmp_path)
    ws = await _authenticated(service, node)
    await ws.send(frame)
    with pytest.raises(ConnectionClosed) as closed:
        await _drain(ws)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code
    body = await stats(service, node.owner, node.node_id)
    assert body["frames_rejected"] == 1
    assert body["last_heartbeat_at"] is None


async def _drain(ws: Any) -> None:
    while True:
        await ws.recv()


async def _authenticated(service: Service, node: Enrolled) -> Any:
    link_url = service.url.replace("http://", "ws://") + "/api/v1/nodes/link"
    ws = await websockets.connect(link_url, max_size=None)
    hello = json.loads(await ws.recv())
    signature = challenge.sign(challenge.link_message(node.node_id, hello["nonce"]), node.seed)
    await ws.send(encode("auth", node_id=node.node_id, signature=signature))
    welcome = json.loads(await ws.recv())
    assert welcome["type"] == "welcome", welcome
    return ws


@sqlite_only
async def test_revocation_closes_the_live_link_and_stops_the_daemon(
    service: Service, tmp_path: Path
) -> None:
    node = await enrol(service.api, tmp_path)
    daemon = NodeDaemon(replace(node.config, server=service.url), backoff_initial_s=0.1)
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(daemon.linked.wait(), timeout=15)
    op = await service.api.operator()
    revoked = await service.api.http.delete(f"/api/v1/nodes/{node.node_id}", headers=op.headers)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked"
    with pytest.raises(NodeStoppedError, match="revoked"):
        await asyncio.wait_for(task, timeout=15)
    # A revoked node's later link attempt is refused (403-like close) and audited.
    link_url = service.url.replace("http://", "ws://") + "/api/v1/nodes/link"
    async with websockets.connect(link_url) as ws:
        hello = json.loads(await ws.recv())
        signature = challenge.sign(challenge.link_message(node.node_id, hello["nonce"]), node.seed)
        await ws.send(encode("auth", node_id=node.node_id, signature=signature))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == CloseCode.NODE_REVOKED
    actions = [(e["action"], e["after"]) for e in await audit_actions(service)]
    assert ("node.link.refused", {"refused": "node revoked"}) in actions
    assert any(a == "node.revoked" for a, _ in actions)
    refused = await service.api.http.post(
        f"/api/v1/nodes/{node.node_id}/commands",
        json={"type": "diagnostics", "payload": {"name": "ping"}},
        headers=op.headers,
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "node_revoked"


@sqlite_only
async def test_key_rotation_binds_a_new_key_and_retires_the_old(
    service: Service, tmp_path: Path
) -> None:
    node = await enrol(service.api, tmp_path)
    async with daemon_running(node, service) as daemon:
        rotation = await service.api.http.post(
            f"/api/v1/nodes/{node.node_id}/key-rotation", headers=node.owner.headers
        )
        assert rotation.status_code == 202, rotation.text
        command_id = rotation.json()["id"]

        async def applied() -> bool:
            row = await command_state(service, node.owner, node.node_id, command_id)
            return bool(row["state"] == "applied")

        await eventually(applied)
        new_seed = read_key(tmp_path / KEY_NAME)
        assert new_seed != node.seed
        row = await command_state(service, node.owner, node.node_id, command_id)
        assert row["result"]["public_key"] == challenge.public_key_hex(new_seed)
        links_before = daemon.links_opened
    # The old key no longer opens a link; the new one does.
    old = await _try_link(service, node.node_id, node.seed)
    assert old == CloseCode.AUTHENTICATION_FAILED
    assert await _try_link(service, node.node_id, new_seed) is None
    assert links_before == 1
    rotated = [e for e in await audit_actions(service) if e["action"] == "node.key.rotated"]
    assert rotated[0]["before"] == {"public_key": challenge.public_key_hex(node.seed)}


async def _try_link(service: Service, node_id: str, seed: bytes) -> int | None:
    """None if the link opens with this key, else the close code."""
    link_url = service.url.replace("http://", "ws://") + "/api/v1/nodes/link"
    async with websockets.connect(link_url) as ws:
        hello = json.loads(await ws.recv())
        signature = challenge.sign(challenge.link_message(node_id, hello["nonce"]), seed)
        await ws.send(encode("auth", node_id=node_id, signature=signature))
        try:
            answer = json.loads(await ws.recv())
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else -1
        assert answer["type"] == "welcome"
        return None


@sqlite_only
async def test_a_revocation_whose_bus_message_was_lost_still_closes_the_link(
    service: Service, tmp_path: Path
) -> None:
    """Each link re-checks its node every WATTX_NODE_LINK_RECHECK_S (1 s here)."""
    node = await enrol(service.api, tmp_path)
    daemon = NodeDaemon(replace(node.config, server=service.url), backoff_initial_s=0.1)
    task = asyncio.create_task(daemon.run())
    await asyncio.wait_for(daemon.linked.wait(), timeout=15)
    async with service.state.db.write() as session:
        await session.execute(
            update(NodeRow).where(NodeRow.id == node.node_id).values(status="revoked")
        )
    with pytest.raises(NodeStoppedError, match="revoked"):
        await asyncio.wait_for(task, timeout=15)


@sqlite_only
async def test_heartbeats_are_events_for_the_owner(service: Service, tmp_path: Path) -> None:
    node = await enrol(service.api, tmp_path)
    seen: list[Event] = []

    async def watch() -> None:
        async for event in service.state.bus.subscribe():
            if event.type is EventType.NODE_HEARTBEAT:
                seen.append(event)
                return

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    async with daemon_running(node, service):
        await asyncio.wait_for(watcher, timeout=15)
    assert seen[0].data["node_id"] == node.node_id
    assert seen[0].audience == frozenset({node.owner.id})


@sqlite_only
async def test_an_ack_for_another_nodes_command_is_refused_and_counted(
    service: Service, tmp_path: Path
) -> None:
    victim = await enrol(service.api, tmp_path / "victim")
    intruder = await enrol(service.api, tmp_path / "intruder")
    issued = await command(
        service, victim.owner, victim.node_id, type="diagnostics", payload={"name": "ping"}
    )
    ws = await _authenticated(service, intruder)
    await ws.send(encode("ack", id=issued["id"], state="applied", detail=None, result=None))
    await ws.send(encode("heartbeat", uptime_s=1, version="x", buffer_depth=0, devices={}))

    async def heartbeat_seen() -> bool:
        return (await stats(service, intruder.owner, intruder.node_id))["uptime_s"] == 1

    await eventually(heartbeat_seen)
    await ws.close()
    assert (await stats(service, intruder.owner, intruder.node_id))["frames_rejected"] == 1
    row = await command_state(service, victim.owner, victim.node_id, issued["id"])
    assert row["state"] == "queued"


@sqlite_only
async def test_a_job_sends_one_command_to_many_nodes_and_is_tracked_whole_and_per_node(
    service: Service, tmp_path: Path
) -> None:
    first = await enrol(service.api, tmp_path / "a")
    second = await enrol(service.api, tmp_path / "b", owner=first.owner)
    op = await service.api.operator()
    refused = await service.api.http.post(
        "/api/v1/nodes/jobs",
        json={
            "node_ids": [first.node_id, "unknown"],
            "type": "diagnostics",
            "payload": {"name": "ping"},
        },
        headers=op.headers,
    )
    assert refused.status_code == 404
    assert refused.json()["code"] == "node_not_found"
    assert (await stats(service, first.owner, first.node_id))["queue_depth"] == 0
    async with daemon_running(first, service), daemon_running(second, service):
        created = await service.api.http.post(
            "/api/v1/nodes/jobs",
            json={
                "node_ids": [first.node_id, second.node_id],
                "type": "diagnostics",
                "payload": {"name": "ping"},
            },
            headers=first.owner.headers,
        )
        assert created.status_code == 201, created.text
        job_id = created.json()["job_id"]
        assert created.json()["by_state"] == {"queued": 2}

        async def all_applied() -> bool:
            job = await service.api.http.get(
                f"/api/v1/nodes/jobs/{job_id}", headers=first.owner.headers
            )
            return bool(job.json()["by_state"] == {"applied": 2})

        await eventually(all_applied)
    job = (await service.api.http.get(f"/api/v1/nodes/jobs/{job_id}", headers=op.headers)).json()
    assert sorted(c["node_id"] for c in job["commands"]) == sorted([first.node_id, second.node_id])
    assert {c["job_id"] for c in job["commands"]} == {job_id}
    stranger = await service.api.signup(Role.NODE_OPERATOR)
    hidden = await service.api.http.get(f"/api/v1/nodes/jobs/{job_id}", headers=stranger.headers)
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "job_not_found"
