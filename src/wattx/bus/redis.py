"""Redis pub/sub bus: every process publishing and subscribing on shared channels.

Redis pub/sub is at most once and so is this bus. While Redis is unreachable,
publishing drops the message (logged and counted) instead of failing the
caller, whose change is already committed; a subscription that loses its
connection subscribes again with exponential backoff and goes on with the
messages published from then on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import structlog
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from wattx.bus.events import Event

# Every channel and key the service makes in Redis starts with ``{prefix}:``
# (``Settings.redis_prefix``, ``wattx`` by default): services or tests sharing one
# server keep apart by giving each its own prefix.
DEFAULT_PREFIX = "wattx"
# The typed events of the event stream, under the prefix: ``wattx:events:global``.
GLOBAL_CHANNEL = "events:global"
# After a failed publish, events are dropped without trying Redis for this long.
_PUBLISH_PAUSE_S = 1.0
_log = structlog.get_logger("wattx.bus")

# What a lost or refused Redis connection raises (redis-py's own errors, and the
# socket's when it escapes them).
REDIS_DOWN = (RedisError, OSError)


def fail_fast_client(url: str) -> Redis[bytes]:
    """A client for requests on a caller's path: a dead server fails it at once
    (bounded connect and read), so the caller can fall back.

    One immediate retry on a new connection: after a server restart every pooled
    connection is dead, and without it the first command after the outage (an
    event, a rate-limit count) would be lost although Redis is back. A server that
    is still down refuses the retry at once.
    """
    client: Redis[bytes] = Redis.from_url(
        url, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 1)
    )
    return client


class RedisBus:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        reconnect_min_s: float = 0.1,
        reconnect_max_s: float = 5.0,
    ) -> None:
        # Publishing fails fast on a dead server; a subscription waits for
        # messages as long as it takes (no read timeout).
        self._redis = fail_fast_client(url)
        self._listener: Redis[bytes] = Redis.from_url(
            url, socket_connect_timeout=2, socket_keepalive=True
        )
        # The event channel and every named channel live under ``{prefix}:``; named
        # channels are handed in and out without it (``nodes:{id}:commands``).
        self._channel = f"{prefix}:{GLOBAL_CHANNEL}"
        self._prefix = f"{prefix}:"
        self._reconnect_min_s = reconnect_min_s
        self._reconnect_max_s = reconnect_max_s
        self._listening = 0
        self._publish_down_until = 0.0
        self.dropped = 0

    async def publish(self, event: Event) -> None:
        if time.monotonic() < self._publish_down_until:
            # Redis failed a moment ago: drop without waiting on it again.
            self.dropped += 1
            return
        try:
            await self._redis.publish(self._channel, event.to_json())
        except REDIS_DOWN as exc:
            self.dropped += 1
            self._publish_down_until = time.monotonic() + _PUBLISH_PAUSE_S
            _log.warning("event_dropped", event_type=event.type.value, error=type(exc).__name__)

    async def subscribe(self) -> AsyncIterator[Event]:
        delay = self._reconnect_min_s
        while True:
            pubsub = self._listener.pubsub()
            listening = False
            try:
                await pubsub.subscribe(self._channel)
                listening = True
                self._listening += 1
                # Redis answers again: publish at once rather than after the pause.
                self._publish_down_until = 0.0
                delay = self._reconnect_min_s
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        yield Event.from_json(message["data"])
            except REDIS_DOWN as exc:
                _log.warning("event_subscription_lost", error=type(exc).__name__, retry_s=delay)
            finally:
                if listening:
                    self._listening -= 1
                with contextlib.suppress(*REDIS_DOWN):
                    await pubsub.unsubscribe(self._channel)
                with contextlib.suppress(*REDIS_DOWN):
                    await pubsub.aclose()  # type: ignore[attr-defined]  # stubs predate redis 5
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._reconnect_max_s)

    @property
    def listening(self) -> bool:
        """Whether at least one subscription is connected and receiving."""
        return self._listening > 0

    async def ping(self) -> bool:
        """Whether Redis answers now."""
        try:
            answered = bool(await self._redis.ping())
        except REDIS_DOWN:
            return False
        if answered:
            self._publish_down_until = 0.0
        return answered

    async def publish_to(self, channel: str, message: str) -> None:
        if time.monotonic() < self._publish_down_until:
            self.dropped += 1
            return
        try:
            await self._redis.publish(self._prefix + channel, message)
        except REDIS_DOWN as exc:
            self.dropped += 1
            self._publish_down_until = time.monotonic() + _PUBLISH_PAUSE_S
            _log.warning("message_dropped", channel=channel, error=type(exc).__name__)

    def may_hear(self, channel: str) -> bool:
        return True  # a subscriber may be in another process

    async def subscribe_to(self, pattern: str) -> AsyncIterator[tuple[str, str]]:
        delay = self._reconnect_min_s
        while True:
            pubsub = self._listener.pubsub()
            try:
                await pubsub.psubscribe(self._prefix + pattern)
                delay = self._reconnect_min_s
                async for message in pubsub.listen():
                    if message.get("type") == "pmessage":
                        channel = message["channel"].decode()[len(self._prefix) :]
                        yield channel, message["data"].decode()
            except REDIS_DOWN as exc:
                _log.warning("channel_subscription_lost", error=type(exc).__name__, retry_s=delay)
            finally:
                with contextlib.suppress(*REDIS_DOWN):
                    await pubsub.punsubscribe(self._prefix + pattern)
                with contextlib.suppress(*REDIS_DOWN):
                    await pubsub.aclose()  # type: ignore[attr-defined]  # stubs predate redis 5
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._reconnect_max_s)

    async def close(self) -> None:
        await self._redis.aclose()  # type: ignore[attr-defined]  # stubs predate redis 5
        await self._listener.aclose()  # type: ignore[attr-defined]
