"""Work that runs at once across keys and one piece after the other within a key.

A subscriber that handled one message at a time made every meter wait for every
other meter's transaction; one task per message without order would let a meter's
second batch be judged before its first. :class:`KeyedTurns` runs each key's work in
the order it was started and different keys' work side by side, at most ``limit``
pieces at once (the next :meth:`KeyedTurns.start` waits for a free place).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any

_log = logging.getLogger(__name__)


class KeyedTurns:
    """Tasks keyed by a string: one key's in order, different keys' concurrently."""

    def __init__(self, limit: int) -> None:
        self._places = asyncio.Semaphore(limit)
        self._last: dict[str, asyncio.Task[None]] = {}
        self._running: set[asyncio.Task[None]] = set()

    async def start(self, key: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Start ``work()`` after the work started before under ``key`` has ended.

        A failure of ``work`` is logged and ends only that piece of work.
        """
        await self._places.acquire()
        task = asyncio.create_task(self._in_turn(self._last.get(key), work))
        self._last[key] = task
        self._running.add(task)
        task.add_done_callback(partial(self._ended, key))

    async def _in_turn(
        self,
        before: asyncio.Task[None] | None,
        work: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        try:
            if before is not None:
                # Its outcome is its own: this piece only waits for it to end.
                await asyncio.wait([before])
            await work()
        finally:
            self._places.release()

    def _ended(self, key: str, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if self._last.get(key) is task:
            del self._last[key]
        if not task.cancelled() and task.exception() is not None:
            _log.error("work for %s failed", key, exc_info=task.exception())

    async def cancel(self) -> None:
        """Cancel every piece not ended yet and wait until all have ended."""
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
