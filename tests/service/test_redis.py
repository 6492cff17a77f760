"""Redis adapters against the real server on 127.0.0.1:6379: bus and rate limiter."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from service.conftest import in_process_app
from wattx.api.ratelimit import RedisRateLimiter
from wattx.bus.events import Event, EventType
from wattx.bus.redis import RedisBus
from wattx.config import Settings
from wattx.nodes.frames import COMMANDS_PATTERN, commands_channel

from .conftest import ManualClock
from .helpers import assert_problem

REDIS_URL = "redis://127.0.0.1:6379/0"
pytestmark = pytest.mark.redis


async def test_redis_bus_delivers_in_order_to_every_subscriber() -> None:
    prefix = f"wattx-test-{uuid.uuid4().hex}"
    publisher = RedisBus(REDIS_URL, prefix=prefix)
    subscriber_a = RedisBus(REDIS_URL, prefix=prefix)
    subscriber_b = RedisBus(REDIS_URL, prefix=prefix)
    try:
        streams = [subscriber_a.subscribe(), subscriber_b.subscribe()]
        firsts = [asyncio.ensure_future(anext(s)) for s in streams]
        await _until_subscribed(f"{prefix}:events:global", 2)
        sent = [
            Event(EventType.BOOK_UPDATED, {"zone": "main", "n": n}, audience=None) for n in range(5)
        ]
        sent.append(Event(EventType.ORDER_CREATED, {"id": "x"}, audience=frozenset({"u1"})))
        for event in sent:
            await publisher.publish(event)
        for stream, first in zip(streams, firsts, strict=True):
            received = [await asyncio.wait_for(first, 5)]
            for _ in range(len(sent) - 1):
                received.append(await asyncio.wait_for(anext(stream), 5))
            assert [(e.type, e.data, e.audience) for e in received] == [
                (e.type, e.data, e.audience) for e in sent
            ]
        for stream in streams:
            await stream.aclose()  # type: ignore[attr-defined]
    finally:
        for bus in (publisher, subscriber_a, subscriber_b):
            await bus.close()


async def _until_subscribed(channel: str, count: int, within_s: float = 10.0) -> None:
    """Wait until the server counts ``count`` subscribers on ``channel``: a message published
    before that is lost to a subscriber, however long a fixed pause was."""
    admin: Redis[bytes] = Redis.from_url(REDIS_URL)
    try:
        deadline = asyncio.get_running_loop().time() + within_s
        while sum(n for _, n in await admin.pubsub_numsub(channel)) < count:
            assert asyncio.get_running_loop().time() < deadline, "subscribers never arrived"
            await asyncio.sleep(0.01)
    finally:
        await admin.aclose()  # type: ignore[attr-defined]  # stubs predate redis 5


async def test_buses_under_different_prefixes_do_not_hear_each_other() -> None:
    """Every channel lives under the bus's prefix, the event channel and the named ones
    (``{prefix}:nodes:{id}:commands``), and a bus hears only its own prefix."""
    mine, other = (f"wattx-test-{uuid.uuid4().hex}" for _ in range(2))
    bus, other_bus = RedisBus(REDIS_URL, prefix=mine), RedisBus(REDIS_URL, prefix=other)
    admin: Redis[bytes] = Redis.from_url(REDIS_URL)
    watcher = admin.pubsub()
    commands = bus.subscribe_to(COMMANDS_PATTERN)
    events = bus.subscribe()
    try:
        await watcher.psubscribe(f"{mine}:*", f"{other}:*")
        for _ in range(2):  # both pattern subscriptions confirmed by the server
            confirmed = await watcher.get_message(timeout=5)
            assert confirmed is not None
            assert confirmed["type"] == "psubscribe"
        first_event = asyncio.ensure_future(anext(events))
        await _until_subscribed(f"{mine}:events:global", 1)
        # The pattern subscription is live once a probe sent on it comes back.
        probe = asyncio.ensure_future(anext(commands))
        deadline = asyncio.get_running_loop().time() + 10
        while not probe.done():
            assert asyncio.get_running_loop().time() < deadline, "pattern never subscribed"
            await bus.publish_to(commands_channel("probe"), "probe")
            await asyncio.wait({probe}, timeout=0.05)
        assert probe.result() == ("nodes:probe:commands", "probe")

        await other_bus.publish_to(commands_channel("n-1"), "not for this bus")
        await other_bus.publish(Event(EventType.BOOK_UPDATED, {"n": 0}, audience=None))
        await bus.publish_to(commands_channel("n-1"), "for this bus")
        await bus.publish(Event(EventType.BOOK_UPDATED, {"n": 1}, audience=None))

        heard = await asyncio.wait_for(anext(commands), 5)
        while heard == ("nodes:probe:commands", "probe"):  # probes sent before the first came
            heard = await asyncio.wait_for(anext(commands), 5)
        assert heard == ("nodes:n-1:commands", "for this bus")
        assert (await asyncio.wait_for(first_event, 5)).data == {"n": 1}
        seen: list[str] = []
        while len(seen) < 4:
            message = await watcher.get_message(ignore_subscribe_messages=True, timeout=5)
            assert message is not None, seen
            if message["data"] != b"probe":
                seen.append(message["channel"].decode())
        assert sorted(seen) == sorted(
            [
                f"{other}:nodes:n-1:commands",
                f"{other}:events:global",
                f"{mine}:nodes:n-1:commands",
                f"{mine}:events:global",
            ]
        )
    finally:
        await commands.aclose()  # type: ignore[attr-defined]
        await events.aclose()  # type: ignore[attr-defined]
        await watcher.aclose()  # type: ignore[attr-defined]  # stubs predate redis 5
        await admin.aclose()  # type: ignore[attr-defined]
        await bus.close()
        await other_bus.close()


async def test_redis_rate_limiter_counts_across_instances() -> None:
    key = f"test:{uuid.uuid4().hex}"
    prefix = f"wattx-test-{uuid.uuid4().hex}"
    first = RedisRateLimiter(REDIS_URL, prefix=prefix)
    second = RedisRateLimiter(REDIS_URL, prefix=prefix)
    try:
        results = [await first.hit(key, 3, 60), await second.hit(key, 3, 60)]
        results += [await first.hit(key, 3, 60), await second.hit(key, 3, 60)]
        assert results[:3] == [None, None, None]
        assert results[3] is not None
        assert 1 <= results[3] <= 60
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize("redis_url", [None, REDIS_URL], ids=["memory", "redis"])
async def test_auth_routes_are_rate_limited_with_retry_after(
    tmp_path: Path, clock: ManualClock, redis_url: str | None
) -> None:
    prefix = f"wattx-test-{uuid.uuid4().hex}"
    settings = Settings(
        data_dir=tmp_path,
        jwt_secret="test-secret-key-of-sufficient-length",
        redis_url=redis_url,
        # Windows are keyed by client address: a prefix of its own starts them empty.
        redis_prefix=prefix,
        rate_limit_auth_per_window=3,
        rate_limit_window_s=3600,
        log_level="WARNING",
    )
    from wattx.store import Database, upgrade_to_head

    db = Database(settings.effective_database_url)
    await upgrade_to_head(db)
    await db.dispose()
    app = in_process_app(settings, clock=clock, run_epoch_clock=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            body = {"email": "x@y.z", "password": "whatever-long"}
            statuses = [
                (await http.post("/api/v1/auth/login", json=body)).status_code for _ in range(3)
            ]
            assert statuses == [401, 401, 401]
            limited = await http.post("/api/v1/auth/login", json=body)
            assert_problem(limited, 429, "rate_limited")
            assert 1 <= int(limited.headers["Retry-After"]) <= 3600
            # Other route groups have their own budget.
            assert (await http.get("/healthz")).status_code == 200
    if redis_url:
        # The counts were kept in Redis, under the service's prefix.
        redis: Redis[bytes] = Redis.from_url(redis_url)
        try:
            assert [k async for k in redis.scan_iter(f"{prefix}:ratelimit:auth:*")] != []
        finally:
            await redis.aclose()  # type: ignore[attr-defined]
