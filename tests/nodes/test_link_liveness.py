"""A link's liveness is its node's heartbeats: the service sends no WebSocket pings and
closes a link that stays silent for five heartbeat intervals (close code 4410)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from service.conftest import ManualClock
from wattx.api.server import server_config
from wattx.config import Settings
from wattx.nodes.frames import CloseCode, encode

from .conftest import enrol, running
from .helpers import link_node


@pytest.fixture
def one_second_heartbeats(settings: Settings) -> Settings:
    # Nodes enrolled under these settings heartbeat every second: silent after 5 s.
    return settings.model_copy(update={"node_heartbeat_interval_s": 1})


async def _closed_code(ws: Any, within_s: float) -> int | None:
    """The close code the service ends ``ws`` with within ``within_s``, or None if the
    link is still open then."""
    try:
        async with asyncio.timeout(within_s):
            while True:
                await ws.recv()
    except TimeoutError:
        return None
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else None


async def test_a_silent_link_is_closed_after_five_heartbeat_intervals(
    one_second_heartbeats: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    async with running(one_second_heartbeats, clock) as service:
        node = await enrol(service.api, tmp_path)
        ws = await link_node(service, node)
        # The client's own protocol pings do not count: only frames from the node do.
        assert await _closed_code(ws, within_s=15.0) == CloseCode.LINK_SILENT
        assert service.state.node_links.linked == 0


async def test_a_heartbeating_link_stays_open_past_the_silence_bound(
    one_second_heartbeats: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    async with running(one_second_heartbeats, clock) as service:
        node = await enrol(service.api, tmp_path)
        ws = await link_node(service, node)

        async def beat() -> None:
            for uptime in range(1, 100):
                await ws.send(
                    encode("heartbeat", uptime_s=uptime, version="v", buffer_depth=0, devices={})
                )
                await asyncio.sleep(1.0)

        beating = asyncio.create_task(beat())
        try:
            # Eight seconds: past the five-second bound a silent link would be closed at.
            assert await _closed_code(ws, within_s=8.0) is None
            assert service.state.node_links.linked == 1
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await beating
            await ws.close()


def test_the_service_sends_no_websocket_pings(settings: Settings) -> None:
    assert server_config(object(), settings).ws_ping_interval is None


def test_the_link_is_not_compressed(settings: Settings) -> None:
    assert server_config(object(), settings).ws_per_message_deflate is False


def test_the_link_runs_on_the_sans_io_websocket_protocol(settings: Settings) -> None:
    """No task per connection between a frame's arrival and the link (docs/nodes.md)."""
    assert server_config(object(), settings).ws == "websockets-sansio"
