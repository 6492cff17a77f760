"""Clocks the runner injects into the service, and how the runner waits on them.

:class:`VirtualClock` jumps: the runner moves it to the next moment that
matters (a gate closure, the end of an epoch), so simulated days pass as fast
as the service answers. :class:`AcceleratedClock` runs ``speed`` times faster
than the wall clock, for a demo that people watch. Both only move forward.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from wattx.sim.errors import SimulationConfigError


class Timekeeper(Protocol):
    """The service's clock, as far as the runner needs it."""

    def now(self) -> datetime: ...

    async def advance_to(self, at: datetime) -> None:
        """Return once the clock shows ``at`` or later."""


class VirtualClock:
    """A clock that shows what it was last set to."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise SimulationConfigError("the clock runs in timezone-aware UTC")
        self._now = start

    def now(self) -> datetime:
        return self._now

    async def advance_to(self, at: datetime) -> None:
        # Time never runs backwards: a service may cache on it (sessions, nonces).
        if at > self._now:
            self._now = at


class AcceleratedClock:
    """Wall-clock time since ``start``, multiplied by ``speed``."""

    def __init__(self, start: datetime, speed: float) -> None:
        if speed <= 0:
            raise SimulationConfigError("the speed-up must be positive", speed=speed)
        if start.tzinfo is None:
            raise SimulationConfigError("the clock runs in timezone-aware UTC")
        self._start = start
        self._speed = speed
        self._origin = time.monotonic()

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._origin) * self._speed
        return self._start + timedelta(seconds=elapsed)

    async def advance_to(self, at: datetime) -> None:
        # One sleep usually suffices; the loop absorbs early wake-ups.
        ahead = (at - self.now()).total_seconds()
        while ahead > 0:
            await asyncio.sleep(ahead / self._speed)
            ahead = (at - self.now()).total_seconds()


class WallClock:
    """The real time (UTC), for a run against a live service that keeps its own clock.

    The run trusts that this machine's clock and the service's agree (both
    synchronised, as a deployment's are); a gate the service closed a moment
    early only turns an order into a refusal the report counts.
    """

    def __init__(self, on_wait: Callable[[datetime], None] | None = None) -> None:
        self._on_wait = on_wait

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def advance_to(self, at: datetime) -> None:
        """Sleep until ``at``; a wait of a second or more is announced to ``on_wait``."""
        ahead = (at - self.now()).total_seconds()
        if ahead >= 1 and self._on_wait is not None:
            self._on_wait(at)
        while ahead > 0:
            await asyncio.sleep(ahead)
            ahead = (at - self.now()).total_seconds()
