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
    hub._append(Event(EventType.TRADE_EXECUTED, {"n": 1}))
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
    hub._append(Event(EventType.TRADE_EXECUTED, {"n": 1}))

    # A stream that waits now is woken by the next event.
    got: list[str] = []

    async def read_next() -> None:
        async for chunk in hub.stream(
            user_id="u-1", sees_everything=True, last_event_id=hub.last_id, keepalive_s=5.0
        ):
            got.append(chunk)
            if "trade.executed" in chunk:
                return

    reader = asyncio.create_task(read_next())
    await asyncio.sleep(0.05)
    hub._append(Event(EventType.TRADE_EXECUTED, {"n": 2}))
    await asyncio.wait_for(reader, timeout=1.0)
    assert '"n":2' in got[-1]


@given(
    ring_size=st.integers(min_value=1, max_value=20),
    kinds=st.lists(st.sampled_from([EventType.TRADE_EXECUTED, EventType.NODE_HEARTBEAT])),
    cursor=st.integers(min_value=-5, max_value=70),
)
def test_the_events_after_a_cursor_are_the_last_of_each_ring_above_it(
    ring_size: int, kinds: list[EventType], cursor: int
) -> None:
    """Node heartbeats have a ring of their own: however many came, the last
    ``ring_size`` other events stay within reach of a reconnecting stream."""
    hub = EventHub(InProcessBus(), ring_size=ring_size)

    async def fill() -> None:
        for kind in kinds:
            hub._append(Event(kind, {}))

    asyncio.run(fill())
    kept: list[int] = []
    for kind in (EventType.TRADE_EXECUTED, EventType.NODE_HEARTBEAT):
        ids_of_kind = [n for n, k in enumerate(kinds, start=1) if k is kind]
        kept += ids_of_kind[-ring_size:]
    expected = sorted(n for n in kept if n > cursor)
    after = hub.after(cursor)
    assert [e.id for e in after] == expected
    assert all(e.event.type is kinds[e.id - 1] for e in after)
