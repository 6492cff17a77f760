"""A background task that does one round of work every ``tick_s`` seconds.

The service's workers (the epoch clock, the chain worker) keep their state in
the database, so a round that fails is logged and the next round resumes where
it left off; nothing is lost by skipping one.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable

from prometheus_client import Counter


class PeriodicTask(ABC):
    """Runs :meth:`run_round` every ``tick_s`` seconds between :meth:`start` and :meth:`stop`."""

    name = "wattx-periodic"

    def __init__(self, *, tick_s: float) -> None:
        self._tick_s = tick_s
        self._task: asyncio.Task[None] | None = None

    @property
    def tick_s(self) -> float:
        return self._tick_s

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


class WriterOnlyTask(PeriodicTask):
    """Another task's rounds, run only while ``runs_here()`` is true: with several
    replicas, only on the elected market writer (docs/operations.md, "Scaling out").

    Every replica keeps the task started; one that is not the writer skips its rounds
    and starts running them on the round after it is elected. ``rounds`` counts the
    rounds by ``job`` and whether they ``ran`` (``yes``) or were skipped (``no``).
    """

    def __init__(
        self,
        inner: PeriodicTask,
        *,
        job: str,
        runs_here: Callable[[], bool],
        rounds: Counter,
    ) -> None:
        super().__init__(tick_s=inner.tick_s)
        self.name = inner.name
        self._inner = inner
        self._runs_here = runs_here
        self._ran = rounds.labels(job=job, ran="yes")
        self._skipped = rounds.labels(job=job, ran="no")

    async def run_round(self) -> None:
        if not self._runs_here():
            self._skipped.inc()
            return
        self._ran.inc()
        await self._inner.run_round()
