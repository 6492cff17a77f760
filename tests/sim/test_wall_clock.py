"""A run against a live service says what it waits for: the wall clock announces each
wait of a second or more, with the time it waits for."""

from __future__ import annotations

from datetime import datetime, timedelta

from wattx.sim.runner.clock import WallClock


async def test_a_wait_is_announced_with_its_time_and_a_past_time_is_not() -> None:
    heard: list[datetime] = []
    clock = WallClock(heard.append)
    target = clock.now() + timedelta(seconds=1.2)
    await clock.advance_to(target)
    assert heard == [target]
    assert clock.now() >= target
    await clock.advance_to(clock.now() - timedelta(seconds=5))
    assert heard == [target]
