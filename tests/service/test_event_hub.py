"""The event hub's streams: events and keep-alives, and cancellation while waiting."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

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


@given(
    ring_size=st.integers(min_value=1, max_value=20),
    appended=st.integers(min_value=0, max_value=60),
    cursor=st.integers(min_value=-5, max_value=70),
)
def test_the_events_after_a_cursor_are_those_of_the_ring_above_it(
    ring_size: int, appended: int, cursor: int
) -> None:
    hub = EventHub(InProcessBus(), ring_size=ring_size)

    async def fill() -> None:
        for n in range(appended):
            await hub._append(Event(EventType.TRADE_EXECUTED, {"n": n}))

    asyncio.run(fill())
    assert hub.after(cursor) == [n for n in hub._ring if n.id > cursor]
