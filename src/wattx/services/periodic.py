"""A background task that does one round of work every ``tick_s`` seconds.

The service's workers (the epoch clock, the chain worker) keep their state in
the database, so a round that fails is logged and the next round resumes where
it left off; nothing is lost by skipping one.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod


class PeriodicTask(ABC):
    """Runs :meth:`run_round` every ``tick_s`` seconds between :meth:`start` and :meth:`stop`."""

    name = "wattx-periodic"

    def __init__(self, *, tick_s: float) -> None:
        self._tick_s = tick_s
        self._task: asyncio.Task[None] | None = None

    @abstractmethod
    async def run_round(self) -> None:
        """One round of work; it handles and logs its own failures."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self.run_round()
            await asyncio.sleep(self._tick_s)
