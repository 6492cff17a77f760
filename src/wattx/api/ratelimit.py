"""Fixed-window rate limits per client and route group, in memory or in Redis.

While Redis cannot be reached the limits stay in force: each process counts in
its own memory (the same limits, no longer shared across replicas) and tries
Redis again after a few seconds. A Redis outage therefore neither opens the
service to unlimited guessing nor turns requests away.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from wattx.bus.redis import REDIS_DOWN, fail_fast_client

_log = structlog.get_logger("wattx.ratelimit")


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_s: int) -> int | None:
        """Count one request; ``None`` if allowed, else seconds until the window resets."""

    async def close(self) -> None: ...


class MemoryRateLimiter:
    """Counters in this process (the embedded default)."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._windows: dict[str, tuple[int, int]] = {}

    async def hit(self, key: str, limit: int, window_s: int) -> int | None:
        now = self._now()
        window = int(now // window_s)
        current, count = self._windows.get(key, (window, 0))
        if current != window:
            count = 0
            if len(self._windows) > 100_000:
                self._forget_before(window)
        count += 1
        self._windows[key] = (window, count)
        if count <= limit:
            return None
        return max(1, math.ceil((window + 1) * window_s - now))

    def _forget_before(self, window: int) -> None:
        self._windows = {k: v for k, v in self._windows.items() if v[0] >= window}

    async def close(self) -> None:
        self._windows.clear()


class RedisRateLimiter:
    """Counters shared by every API replica: INCR on a key per window, expiring with it.

    While Redis is unreachable, counts in this process instead (see the module).
    """

    def __init__(
        self, url: str, *, prefix: str = "wattx:ratelimit", retry_redis_s: float = 5.0
    ) -> None:
        self._redis = fail_fast_client(url)
        self._prefix = prefix
        self._fallback = MemoryRateLimiter()
        self._retry_redis_s = retry_redis_s
        self._redis_down_until = 0.0

    @property
    def using_redis(self) -> bool:
        """False while the limits are counted in this process because Redis failed."""
        return time.monotonic() >= self._redis_down_until

    async def hit(self, key: str, limit: int, window_s: int) -> int | None:
        if not self.using_redis:
            return await self._fallback.hit(key, limit, window_s)
        try:
            return await self._redis_hit(key, limit, window_s)
        except REDIS_DOWN as exc:
            self._redis_down_until = time.monotonic() + self._retry_redis_s
            _log.warning("rate_limit_counting_locally", error=type(exc).__name__)
            return await self._fallback.hit(key, limit, window_s)

    async def _redis_hit(self, key: str, limit: int, window_s: int) -> int | None:
        now = time.time()
        window = int(now // window_s)
        redis_key = f"{self._prefix}:{key}:{window}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(redis_key)
            pipe.expire(redis_key, window_s + 1)
            count, _ = await pipe.execute()
        if int(count) <= limit:
            return None
        return max(1, math.ceil((window + 1) * window_s - now))

    async def close(self) -> None:
        await self._fallback.close()
        await self._redis.aclose()  # type: ignore[attr-defined]  # stubs predate redis 5
