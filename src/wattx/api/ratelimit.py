"""Fixed-window rate limits per client and route group, in memory or in Redis.

While Redis cannot be reached the limits stay in force: each process counts in
its own memory (the same limits, no longer shared across replicas) and tries
Redis again after a few seconds. A Redis outage therefore neither opens the
service to unlimited guessing nor turns requests away.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Protocol

import structlog

from wattx.bus.redis import DEFAULT_PREFIX, REDIS_DOWN, fail_fast_client

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
        self, url: str, *, prefix: str = DEFAULT_PREFIX, retry_redis_s: float = 5.0
    ) -> None:
        self._redis = fail_fast_client(url)
        # Keys: ``{prefix}:ratelimit:{client and route group}:{window}``.
        self._prefix = f"{prefix}:ratelimit"
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


class FailureStore(Protocol):
    async def get(self, key: str, now: float) -> tuple[int, float] | None:
        """The count of failures and the time of the last, or ``None`` once forgotten."""

    async def add(self, key: str, at: float, ttl_s: int) -> None:
        """Count one more failure at ``at``; forget the key ``ttl_s`` after it."""

    async def clear(self, key: str) -> None: ...

    async def close(self) -> None: ...


class MemoryFailureStore:
    def __init__(self) -> None:
        self._failures: dict[str, tuple[int, float, float]] = {}

    async def get(self, key: str, now: float) -> tuple[int, float] | None:
        found = self._failures.get(key)
        if found is None or found[2] <= now:
            return None
        return found[0], found[1]

    async def add(self, key: str, at: float, ttl_s: int) -> None:
        count = (await self.get(key, at) or (0, 0.0))[0]
        if len(self._failures) > 100_000:
            self._failures = {k: v for k, v in self._failures.items() if v[2] > at}
        self._failures[key] = (count + 1, at, at + ttl_s)

    async def clear(self, key: str) -> None:
        self._failures.pop(key, None)

    async def close(self) -> None:
        self._failures.clear()


class RedisFailureStore:
    """Failures shared by every API replica: one hash per account, expiring with it.

    While Redis is unreachable, failures are counted in this process instead
    (like the rate limits, see the module), and Redis is tried again later.
    """

    def __init__(
        self, url: str, *, prefix: str = DEFAULT_PREFIX, retry_redis_s: float = 5.0
    ) -> None:
        self._redis = fail_fast_client(url)
        # Keys: ``{prefix}:login-failures:{account}``.
        self._prefix = f"{prefix}:login-failures"
        self._fallback = MemoryFailureStore()
        self._retry_redis_s = retry_redis_s
        self._redis_down_until = 0.0

    def _using_redis(self) -> bool:
        return time.monotonic() >= self._redis_down_until

    def _redis_failed(self, exc: BaseException) -> None:
        self._redis_down_until = time.monotonic() + self._retry_redis_s
        _log.warning("login_failures_counted_locally", error=type(exc).__name__)

    async def get(self, key: str, now: float) -> tuple[int, float] | None:
        if self._using_redis():
            try:
                # Redis forgets the key itself (its expiry is reset by every failure).
                found = await self._redis.hmget(f"{self._prefix}:{key}", ["count", "last"])
            except REDIS_DOWN as exc:
                self._redis_failed(exc)
            else:
                if found[0] is None or found[1] is None:
                    return await self._fallback.get(key, now)
                return int(found[0]), float(found[1])
        return await self._fallback.get(key, now)

    async def add(self, key: str, at: float, ttl_s: int) -> None:
        if self._using_redis():
            redis_key = f"{self._prefix}:{key}"
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.hincrby(redis_key, "count", 1)
                    pipe.hset(redis_key, "last", repr(at))
                    pipe.expire(redis_key, ttl_s)
                    await pipe.execute()
            except REDIS_DOWN as exc:
                self._redis_failed(exc)
            else:
                return
        await self._fallback.add(key, at, ttl_s)

    async def clear(self, key: str) -> None:
        await self._fallback.clear(key)
        if self._using_redis():
            try:
                await self._redis.delete(f"{self._prefix}:{key}")
            except REDIS_DOWN as exc:
                self._redis_failed(exc)

    async def close(self) -> None:
        await self._fallback.close()
        await self._redis.aclose()  # type: ignore[attr-defined]  # stubs predate redis 5


class LoginBackoff:
    """Failed password logins per account, wherever they come from.

    The first ``free_failures`` cost nothing; after that each failure makes the
    account wait before the next attempt: 1 s, then 2, 4, 8 ... up to
    ``max_wait_s``. Attempts during the wait are refused without checking the
    password, so they neither count nor lengthen it. A success, or
    ``forget_s`` without a failure, starts the count afresh. A guesser spread
    over many addresses gets about one guess per ``max_wait_s`` per account; the
    real user waits at most ``max_wait_s`` for their next try.
    """

    def __init__(
        self,
        store: FailureStore,
        *,
        free_failures: int,
        max_wait_s: int,
        forget_s: int,
        now: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._free = free_failures
        self._max_wait_s = max_wait_s
        self._forget_s = forget_s
        self._now = now

    @staticmethod
    def account_key(email: str) -> str:
        return hashlib.sha256(email.strip().lower().encode()).hexdigest()

    async def retry_after(self, email: str) -> int | None:
        """Seconds the account must still wait, or ``None`` if it may try now."""
        found = await self._store.get(self.account_key(email), self._now())
        if found is None:
            return None
        count, last = found
        if count < self._free:
            return None
        wait = min(2 ** (count - self._free), self._max_wait_s)
        remaining = last + wait - self._now()
        return math.ceil(remaining) if remaining > 0 else None

    async def failed(self, email: str) -> None:
        await self._store.add(self.account_key(email), self._now(), self._forget_s)

    async def succeeded(self, email: str) -> None:
        await self._store.clear(self.account_key(email))

    async def close(self) -> None:
        await self._store.close()
