"""docs/nodes.md and docs/device-protocol.md stay true: their examples are parsed, signed,
and run through a real device bridge; the close-code table matches the code."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt

from wattx.nodes import challenge, commands, desired
from wattx.nodes.commands import DEVICE_COMMAND_TYPES
from wattx.nodes.daemon.bridge import DeviceBridge
from wattx.nodes.daemon.stopping import stop_tasks
from wattx.nodes.frames import AuthFrame, CloseCode, HeartbeatFrame, parse_node_frame

DOCS = Path(__file__).resolve().parents[2] / "docs"
SEED = bytes(range(32))


def _example(doc: str, name: str) -> str:
    match = re.search(rf"<!-- example:{re.escape(name)} -->\n```\w*\n(.*?)\n```", doc, re.DOTALL)
    assert match is not None, f"example {name!r} missing"
    return match.group(1)


def test_the_auth_example_verifies_with_the_example_key() -> None:
    doc = (DOCS / "nodes.md").read_text(encoding="utf-8")
    assert _example(doc, "public-key") == challenge.public_key_hex(SEED)
    frame = parse_node_frame(_example(doc, "auth-frame"))
    assert isinstance(frame, AuthFrame)
    message = challenge.link_message(frame.node_id, "5f" * 32)
    assert challenge.verifies(message, frame.signature, challenge.public_key_hex(SEED))
    assert frame.signature == challenge.sign(message, SEED)
    assert isinstance(parse_node_frame(_example(doc, "heartbeat")), HeartbeatFrame)


def test_the_close_code_table_lists_every_code() -> None:
    doc = (DOCS / "nodes.md").read_text(encoding="utf-8")
    table = doc.split("<!-- close-codes -->", 1)[1].split("\n\n", 1)[0]
    documented = {int(m) for m in re.findall(r"^\| (\d{4}) \|", table, re.MULTILINE)}
    assert documented == {int(c) for c in CloseCode if c != CloseCode.NORMAL}


async def test_the_worked_example_runs_through_a_real_bridge() -> None:
    doc = (DOCS / "device-protocol.md").read_text(encoding="utf-8")
    command: dict[str, Any] = json.loads(_example(doc, "command"))
    ack: dict[str, Any] = json.loads(_example(doc, "ack"))
    assert set(command) == {"id", "type", "payload", "issued_at", "expires_at"}
    assert command["type"] in DEVICE_COMMAND_TYPES
    assert ack["id"] == command["id"]
    topics = doc.split("<!-- topics -->", 1)[1]
    assert "`wattx/{zone}/dev/{device_id}/cmd`" in topics
    assert "`wattx/{zone}/dev/{device_id}/ack`" in topics

    prefix = f"wattx-test-{uuid.uuid4().hex[:8]}"
    buffered: list[tuple[str, dict[str, Any]]] = []

    async def no_event(name: str, data: dict[str, Any]) -> None:
        return None

    bridge = DeviceBridge(
        "mqtt://127.0.0.1:1883",
        prefix,
        on_batch=lambda meter, batch: buffered.append((meter, batch)) or len(buffered),
        on_event=no_event,
    )
    runner = asyncio.create_task(bridge.run())
    try:
        await asyncio.wait_for(bridge.connected.wait(), timeout=10)
        async with aiomqtt.Client("127.0.0.1", 1883) as device:
            await device.subscribe(f"{prefix}/main/dev/bat-1/cmd", qos=1)
            # The example's instants are in the past: the same envelope, valid from now.
            expires_at = datetime.now(UTC) + timedelta(minutes=5)
            live = command | {"expires_at": expires_at.isoformat()}
            sent = asyncio.create_task(bridge.command("main", "bat-1", live, expires_at=expires_at))
            message = await asyncio.wait_for(anext(aiter(device.messages)), timeout=10)
            assert json.loads(message.payload) == live  # type: ignore[arg-type]
            await device.publish(f"{prefix}/main/dev/bat-1/ack", json.dumps(ack), qos=1)
            assert await asyncio.wait_for(sent, timeout=10) == ack
        assert "bat-1" in bridge.devices
    finally:
        await stop_tasks([runner])


def test_the_settable_config_table_is_the_code() -> None:
    doc = (DOCS / "nodes.md").read_text(encoding="utf-8")
    table = doc.split("<!-- settable-config -->", 1)[1].split("\n\n", 1)[0]
    documented = re.findall(r"^\| `(\w+)` \|", table, re.MULTILINE)
    assert tuple(documented) == desired.SETTABLE
    assert f"**{desired.ROLLBACK_S:.0f} s**" in doc
    assert f"{desired.HEARTBEAT_RANGE_S[0]} to {desired.HEARTBEAT_RANGE_S[1]}" in table


def test_the_lease_rule_is_the_code() -> None:
    doc = (DOCS / "nodes.md").read_text(encoding="utf-8")
    assert commands.LEASE_HEARTBEATS == 2
    assert "at most twice the node's heartbeat interval" in doc
    assert sorted(commands.LEASED_DEVICE_COMMANDS) == ["transfer.start"]
    release = json.loads(
        _example((DOCS / "device-protocol.md").read_text(encoding="utf-8"), "release")
    )
    assert set(release) == {"id", "type", "payload", "issued_at", "expires_at"}
    assert release["type"] == "release"
