"""The event hub's streams: events and keep-alives, and cancellation while waiting."""

from __future__ import annotations

import asyncio

from wattx.api.sse import EventHub
from wattx.bus.events import Event, EventType
from wattx.bus.memory import InProcessBus


async def test_a_waiting_stream_gets_the_next_event_and_keepalives_between() -> None:
    hub = EventHub(InProcessBus(), ring_size=64)
    got: list[str] = []

    async def read() -> None:
        async for chunk in hub.stream(
            user_id="u-1", sees_everything=True, last_event_id=None, keepalive_s=0.05
        ):
            got.append(chunk)
            if "trade.executed" in chunk:
                return

    reader = asyncio.create_task(read())
    await asyncio.sleep(0.2)
    await hub._append(Event(EventType.TRADE_EXECUTED, {"n": 1}))
    await asyncio.wait_for(reader, timeout=2.0)
    assert got[0].startswith(": connected")
    assert ": keep-alive\n\n" in got
    assert "trade.executed" in got[-1]


async def test_a_stream_cancelled_while_it_waits_leaves_publishing_free() -> None:
    hub = EventHub(InProcessBus(), ring_size=64)

    async def read() -> None:
        async for _ in hub.stream(
            user_id="u-1", sees_everything=True, last_event_id=None, keepalive_s=0.01
        ):
            pass

    readers = [asyncio.create_task(read()) for _ in range(20)]
    await asyncio.sleep(0.05)
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    await asyncio.wait_for(hub._append(Event(EventType.TRADE_EXECUTED, {})), timeout=1.0)
