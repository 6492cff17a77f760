"""The in-process bus knows whether a channel has a listener; Redis cannot, and says so."""

from __future__ import annotations

import asyncio

from wattx.bus.memory import InProcessBus
from wattx.bus.redis import RedisBus


async def test_a_channel_may_be_heard_only_while_a_matching_pattern_is_subscribed() -> None:
    bus = InProcessBus()
    assert not bus.may_hear("nodes:n-1:heartbeat")
    stream = bus.subscribe_to("nodes:*:heartbeat")
    waiting = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    assert bus.may_hear("nodes:n-1:heartbeat")
    assert not bus.may_hear("nodes:n-1:events")
    await bus.publish_to("nodes:n-1:heartbeat", "beat")
    assert await asyncio.wait_for(waiting, 1) == ("nodes:n-1:heartbeat", "beat")
    await stream.aclose()  # type: ignore[attr-defined]
    assert not bus.may_hear("nodes:n-1:heartbeat")


async def test_a_shared_bus_always_may_be_heard() -> None:
    # A subscriber may sit in another process: Redis is not asked.
    bus = RedisBus("redis://127.0.0.1:6379/0", prefix="wattx-test-may-hear")
    try:
        assert bus.may_hear("nodes:n-1:heartbeat")
    finally:
        await bus.close()
