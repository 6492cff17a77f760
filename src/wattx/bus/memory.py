"""In-process bus: one bounded queue per subscriber."""

from __future__ import annotations

import asyncio
import fnmatch
from collections.abc import AsyncIterator

from wattx.bus.events import Event

_QUEUE_SIZE = 10_000


class InProcessBus:
    """Fan-out within one process. A subscriber that falls 10 000 events behind
    loses the oldest ones rather than slowing every publisher down."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[Event]] = set()
        self._channel_queues: dict[asyncio.Queue[tuple[str, str]], str] = {}

    async def publish(self, event: Event) -> None:
        for queue in list(self._queues):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)

    async def subscribe(self) -> AsyncIterator[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=_QUEUE_SIZE)
        self._queues.add(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._queues.discard(queue)

    async def publish_to(self, channel: str, message: str) -> None:
        for queue, pattern in list(self._channel_queues.items()):
            if fnmatch.fnmatchcase(channel, pattern):
                if queue.full():
                    queue.get_nowait()
                queue.put_nowait((channel, message))

    def may_hear(self, channel: str) -> bool:
        return any(fnmatch.fnmatchcase(channel, p) for p in self._channel_queues.values())

    async def subscribe_to(self, pattern: str) -> AsyncIterator[tuple[str, str]]:
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=_QUEUE_SIZE)
        self._channel_queues[queue] = pattern
        try:
            while True:
                yield await queue.get()
        finally:
            self._channel_queues.pop(queue, None)

    async def close(self) -> None:
        self._queues.clear()
        self._channel_queues.clear()
