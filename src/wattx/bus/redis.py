"""Redis pub/sub bus: every process publishing and subscribing on shared channels."""

from __future__ import annotations

from collections.abc import AsyncIterator

from redis.asyncio import Redis

from wattx.bus.events import Event

GLOBAL_CHANNEL = "wattx:events:global"


class RedisBus:
    def __init__(self, url: str, *, channel: str = GLOBAL_CHANNEL, prefix: str = "") -> None:
        self._redis: Redis[bytes] = Redis.from_url(url)
        self._channel = channel
        # Named channels are namespaced by ``prefix`` (tests sharing one server).
        self._prefix = prefix

    async def publish(self, event: Event) -> None:
        await self._redis.publish(self._channel, event.to_json())

    async def subscribe(self) -> AsyncIterator[Event]:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self._channel)
        try:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    yield Event.from_json(message["data"])
        finally:
            await pubsub.unsubscribe(self._channel)
            await pubsub.aclose()  # type: ignore[attr-defined]  # stubs predate redis 5

    async def publish_to(self, channel: str, message: str) -> None:
        await self._redis.publish(self._prefix + channel, message)

    async def subscribe_to(self, pattern: str) -> AsyncIterator[tuple[str, str]]:
        pubsub = self._redis.pubsub()
        await pubsub.psubscribe(self._prefix + pattern)
        try:
            async for message in pubsub.listen():
                if message.get("type") == "pmessage":
                    channel = message["channel"].decode()[len(self._prefix) :]
                    yield channel, message["data"].decode()
        finally:
            await pubsub.punsubscribe(self._prefix + pattern)
            await pubsub.aclose()  # type: ignore[attr-defined]  # stubs predate redis 5

    async def close(self) -> None:
        await self._redis.aclose()  # type: ignore[attr-defined]  # stubs predate redis 5
