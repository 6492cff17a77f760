"""Durable commands: redelivered after a lost ack, resumed after kill -9, run once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import websockets

from wattx.nodes import challenge
from wattx.nodes.frames import encode

from .conftest import Service, enrol
from .helpers import command, command_state, daemon_running, eventually, sqlite_only, stats


@sqlite_only
async def test_a_command_whose_ack_was_lost_is_sent_again_and_run_once(
    service: Service, tmp_path: Path
) -> None:
    node = await enrol(service.api, tmp_path)
    link_url = service.url.replace("http://", "ws://") + "/api/v1/nodes/link"
    # The node links, receives the command and dies before persisting or acking it.
    async with websockets.connect(link_url) as ws:
        hello = json.loads(await ws.recv())
        signature = challenge.sign(challenge.link_message(node.node_id, hello["nonce"]), node.seed)
        await ws.send(encode("auth", node_id=node.node_id, signature=signature))
        assert json.loads(await ws.recv())["type"] == "welcome"
        issued = await command(
            service, node.owner, node.node_id, type="diagnostics", payload={"name": "buffer"}
        )
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
        assert (frame["type"], frame["command"]["id"]) == ("command", issued["id"])

    async def marked_sent() -> bool:
        # Pushed as it was queued; the "sent" mark is written with the next round.
        row = await command_state(service, node.owner, node.node_id, issued["id"])
        return bool(row["state"] == "sent")

    await eventually(marked_sent)
    async with daemon_running(node, service) as daemon:

        async def applied() -> bool:
            row = await command_state(service, node.owner, node.node_id, issued["id"])
            return bool(row["state"] == "applied")

        await eventually(applied)
        stored = daemon.store.command(issued["id"])
        assert stored is not None
        assert stored.runs == 1
    row = await command_state(service, node.owner, node.node_id, issued["id"])
    assert row["retries"] >= 2
    assert row["result"] == {"depth": 0, "lost": 0}
    assert (await stats(service, node.owner, node.node_id))["commands_applied"] == 1


async def _spawn_node(data_dir: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wattx.cli.node",
        "run",
        "--data-dir",
        str(data_dir),
        "--heartbeat-s",
        "1",
        "--log-level",
        "WARNING",
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stderr=open(data_dir / "daemon.log", "ab"),  # noqa: ASYNC230
    )


@sqlite_only
async def test_a_node_killed_mid_command_resumes_it_and_the_device_applies_it_once(
    service: Service, tmp_path: Path
) -> None:
    prefix = f"wattx-test-{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path / "node"
    node = await enrol(service.api, data_dir, server=service.url, mqtt_prefix=prefix)
    cmd_topic = f"{prefix}/main/dev/bat-1/cmd"
    received: Counter[str] = Counter()
    applied: set[str] = set()
    process = await _spawn_node(data_dir)
    try:
        async with aiomqtt.Client("127.0.0.1", 1883) as device:
            await device.subscribe(cmd_topic, qos=1)

            async def linked() -> bool:
                return bool((await stats(service, node.owner, node.node_id))["linked"])

            await eventually(linked, within_s=30)
            issued = await command(
                service,
                node.owner,
                node.node_id,
                type="device.command",
                payload={"zone": "main", "device_id": "bat-1", "type": "lock", "payload": {}},
            )
            messages = aiter(device.messages)
            first = json.loads((await asyncio.wait_for(anext(messages), timeout=30)).payload)  # type: ignore[arg-type]
            received[first["id"]] += 1

            async def durable() -> bool:
                row = await command_state(service, node.owner, node.node_id, issued["id"])
                return bool(row["state"] == "node_durable")

            # The node persisted and forwarded the command; it is killed before the device
            # answers.
            await eventually(durable)
            process.send_signal(signal.SIGKILL)
            await process.wait()
            process = await _spawn_node(data_dir)
            again = json.loads((await asyncio.wait_for(anext(messages), timeout=30)).payload)  # type: ignore[arg-type]
            received[again["id"]] += 1
            # The device drops duplicates by id: it applies the command once, acks each copy.
            applied.add(again["id"])
            await device.publish(
                f"{prefix}/main/dev/bat-1/ack",
                json.dumps({"id": again["id"], "status": "applied"}),
                qos=1,
            )

            async def done() -> bool:
                row = await command_state(service, node.owner, node.node_id, issued["id"])
                return bool(row["state"] == "applied")

            await eventually(done, within_s=30)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await process.wait()
    assert received == Counter({issued["id"]: 2})
    assert applied == {issued["id"]}
    assert first["type"] == "lock"
    assert datetime.fromisoformat(first["expires_at"]) == datetime.fromisoformat(
        issued["expires_at"]
    )
    body = await stats(service, node.owner, node.node_id)
    assert (body["commands_applied"], body["commands_failed"]) == (1, 0)
    row: dict[str, Any] = await command_state(service, node.owner, node.node_id, issued["id"])
    assert row["result"]["device_ack"]["status"] == "applied"


@sqlite_only
async def test_a_command_stored_while_its_link_drops_before_the_ack_is_run_once(
    service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = await enrol(service.api, tmp_path)
    async with daemon_running(node, service) as daemon:
        send = daemon._send
        dropped: list[str] = []

        async def link_lost_at_the_first_ack(text: str) -> None:
            # The link goes down the moment the node acks its first new command: the
            # command is already in the node's store; the ack never leaves.
            frame = json.loads(text)
            if not dropped and frame.get("state") == "node_durable":
                dropped.append(frame["id"])
                raise ConnectionError("link lost")
            await send(text)

        monkeypatch.setattr(daemon, "_send", link_lost_at_the_first_ack)
        issued = await command(
            service, node.owner, node.node_id, type="diagnostics", payload={"name": "buffer"}
        )

        async def applied() -> bool:
            row = await command_state(service, node.owner, node.node_id, issued["id"])
            return bool(row["state"] == "applied")

        # Sent again at the node's next link and answered from its store, it still runs.
        await eventually(applied, within_s=30)
        assert dropped == [issued["id"]]
        stored = daemon.store.command(issued["id"])
        assert stored is not None
        assert (stored.state, stored.runs) == ("applied", 1)
    assert (await stats(service, node.owner, node.node_id))["commands_applied"] == 1
