"""A node's heartbeat and event channels on the in-process bus: published while a
subscriber's pattern matches them, not encoded at all while none does."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from service.conftest import ManualClock
from wattx.config import Settings
from wattx.nodes.frames import HeartbeatFrame, events_channel, heartbeat_channel

from .conftest import enrol, running
from .helpers import grant_for


async def test_heartbeats_and_events_reach_a_subscriber_and_cost_nothing_without_one(
    manual_rounds: Settings, clock: ManualClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running(manual_rounds, clock) as service:
        nodes = service.state.nodes
        bus = nodes._bus
        node = await enrol(service.api, tmp_path)
        grant = await grant_for(service, node)
        published: list[str] = []
        original = bus.publish_to

        async def recording(channel: str, message: str) -> None:
            published.append(channel)
            await original(channel, message)

        monkeypatch.setattr(bus, "publish_to", recording)
        beat = HeartbeatFrame(uptime_s=7, version="1.2.3", buffer_depth=4, devices={"d-1": {}})

        await nodes.record_heartbeat(grant, beat)
        await nodes.publish_node_event(grant, "door", {"open": True})
        assert published == []  # nothing subscribes to these channels by default

        heard = bus.subscribe_to("nodes:*:heartbeat")
        first = asyncio.ensure_future(anext(heard))
        await asyncio.sleep(0)  # the subscription registers on its first wait
        try:
            assert bus.may_hear(heartbeat_channel(node.node_id))
            assert not bus.may_hear(events_channel(node.node_id))
            await nodes.record_heartbeat(grant, beat)
            await nodes.publish_node_event(grant, "door", {"open": False})
            channel, message = await asyncio.wait_for(first, 5)
        finally:
            first.cancel()
            await heard.aclose()  # type: ignore[attr-defined]
        assert channel == heartbeat_channel(node.node_id)
        data = json.loads(message)
        assert (data["node_id"], data["uptime_s"], data["version"]) == (node.node_id, 7, "1.2.3")
        assert (data["buffer_depth"], data["devices"]) == (4, {"d-1": {}})
        assert published == [heartbeat_channel(node.node_id)]
        assert not bus.may_hear(heartbeat_channel(node.node_id))  # the subscriber left
