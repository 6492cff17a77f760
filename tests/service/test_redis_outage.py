"""A Redis outage against a private ``redis-server`` that the tests stop and start:
committed writes still answer 2xx, rate limits stay in force (counted per process),
readiness reports Redis, and live events come back once Redis does."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from service.conftest import in_process_app
from wattx.api.ratelimit import RedisRateLimiter
from wattx.config import Settings
from wattx.services.principal import Role
from wattx.store import Database, upgrade_to_head

from .client import PASSWORD, ApiClient
from .conftest import ManualClock
from .helpers import FLAT_ZONE, assert_problem
from .live import free_port, serving
from .test_events import _events


class RedisServer:
    """A ``redis-server`` of the test's own on a free port, without persistence."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tmp_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self._dir)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def wait_ready(self) -> None:
        client: Redis[bytes] = Redis.from_url(self.url)
        try:
            for _ in range(200):
                try:
                    if await client.ping():
                        return
                except (OSError, RedisError):  # refused while it starts
                    pass
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    await server.wait_ready()
    try:
        yield server
    finally:
        server.stop()


SettingsFor = Callable[..., Settings]


@pytest.fixture
def settings_for(tmp_path: Path) -> SettingsFor:
    def make(redis_url: str, *, auth_limit: int = 10_000) -> Settings:
        return Settings(
            data_dir=tmp_path,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'wattx.sqlite3'}",
            jwt_secret="test-secret-key-of-sufficient-length",
            redis_url=redis_url,
            rate_limit_auth_per_window=auth_limit,
            rate_limit_default_per_window=100_000,
            rate_limit_window_s=3600,
            sse_keepalive_s=0.5,
            log_level="WARNING",
        )

    return make


async def _migrate(settings: Settings) -> None:
    db = Database(settings.effective_database_url)
    await upgrade_to_head(db)
    await db.dispose()


async def _next_event(stream: AsyncIterator[dict[str, Any]], kind: str) -> dict[str, Any]:
    async for item in stream:
        if item.get("event") == kind:
            return item
    raise AssertionError("the stream ended")


async def _ready(http: httpx.AsyncClient, *, within_s: float) -> httpx.Response:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        ready = await http.get("/readyz")
        if ready.status_code == 200 or asyncio.get_running_loop().time() > deadline:
            return ready
        await asyncio.sleep(0.1)


async def test_redis_outage_keeps_writes_answered_and_events_come_back(
    redis_server: RedisServer, settings_for: SettingsFor
) -> None:
    settings = settings_for(redis_server.url)
    await _migrate(settings)
    app = in_process_app(settings, clock=ManualClock(), run_epoch_clock=False)
    async with serving(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=20) as http:
        api = ApiClient(http, app.state.wattx)
        op = await api.operator()
        assert (await http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)).is_success
        seller = await api.signup(Role.PROSUMER)
        await api.fund(seller, energy_wh=5_000)
        ready = await _ready(http, within_s=10)
        assert ready.status_code == 200, ready.text
        assert ready.json()["redis"] is True

        stream = _events(http, seller)
        assert (await anext(stream))["comment"].startswith(": connected")
        first = await api.order(seller, side="sell", qty_wh=100, limit_price=90_000, zone="main")
        assert first.status_code == 201, first.text
        seen = await asyncio.wait_for(_next_event(stream, "order.created"), 10)
        assert seen["data"]["data"]["id"] == first.json()["order"]["id"]

        redis_server.stop()
        # Committed while Redis is down: answered 201, stored, only its event is lost.
        during = await api.order(seller, side="sell", qty_wh=100, limit_price=91_000, zone="main")
        assert during.status_code == 201, during.text
        stored = await http.get(
            f"/api/v1/orders/{during.json()['order']['id']}", headers=seller.headers
        )
        assert stored.status_code == 200
        # A rate-limited route still answers by its own rules.
        wrong = await http.post(
            "/api/v1/auth/login", json={"email": seller.email, "password": "not-the-password"}
        )
        assert_problem(wrong, 401, "invalid_credentials")
        down = await http.get("/readyz")
        assert down.status_code == 503
        assert down.json()["redis"] is False
        assert down.json()["database"] is True

        redis_server.start()
        await redis_server.wait_ready()
        back = await _ready(http, within_s=15)
        assert back.status_code == 200, back.text
        # The same event stream carries events again.
        after = await api.order(seller, side="sell", qty_wh=100, limit_price=92_000, zone="main")
        assert after.status_code == 201, after.text
        seen = await asyncio.wait_for(_next_event(stream, "order.created"), 10)
        assert seen["data"]["data"]["id"] == after.json()["order"]["id"]
        await stream.aclose()  # type: ignore[attr-defined]


async def test_rate_limits_are_counted_in_the_process_while_redis_is_down(
    redis_server: RedisServer, settings_for: SettingsFor
) -> None:
    settings = settings_for(redis_server.url, auth_limit=3)
    await _migrate(settings)
    app = in_process_app(settings, clock=ManualClock(), run_epoch_clock=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            redis_server.stop()
            body = {"email": "nobody@wattx.test", "password": PASSWORD}
            statuses = [
                (await http.post("/api/v1/auth/login", json=body)).status_code for _ in range(3)
            ]
            assert statuses == [401, 401, 401]
            # Failing closed would refuse the first; failing open, never the fourth.
            limited = await http.post("/api/v1/auth/login", json=body)
            assert_problem(limited, 429, "rate_limited")


async def test_the_limiter_goes_back_to_redis_once_it_answers(
    redis_server: RedisServer,
) -> None:
    key = f"test:{uuid.uuid4().hex}"
    limiter = RedisRateLimiter(redis_server.url, retry_redis_s=0.2)
    reader: Redis[bytes] = Redis.from_url(redis_server.url)
    try:
        assert await limiter.hit(key, 2, 60) is None
        assert limiter.using_redis
        redis_server.stop()
        # Counted here: the count in Redis (1) is not seen, the local one starts at 1.
        assert [await limiter.hit(key, 2, 60) for _ in range(3)][:2] == [None, None]
        assert not limiter.using_redis
        redis_server.start()
        await redis_server.wait_ready()
        await asyncio.sleep(0.3)
        assert limiter.using_redis
        assert await limiter.hit(key, 2, 60) is None
        # The restarted server (no persistence) counted that hit.
        assert [k async for k in reader.scan_iter(f"wattx:ratelimit:{key}:*")] != []
    finally:
        await limiter.close()
        await reader.aclose()
