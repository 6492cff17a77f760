"""The live-session cache: how long a session revoked by another replica still passes,
and how often busy sessions are read."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, update

from wattx.api.state import AppState
from wattx.config import Settings
from wattx.services.principal import Role
from wattx.store.models import AuthSessionRow

from .client import ApiClient
from .conftest import service_settings

CACHE_S = 1.0


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return service_settings(database_url, tmp_path, session_cache_s=CACHE_S)


async def test_sessions_revoked_elsewhere_are_refused_within_the_cache_time(
    api: ApiClient, state: AppState
) -> None:
    users = [await api.signup(Role.CONSUMER) for _ in range(12)]
    cached: dict[str, tuple[float, float]] = {}  # user: just before and after its session is cached
    for user in users:
        before = time.monotonic()
        me = await api.http.get("/api/v1/users/me", headers=user.headers)
        assert me.status_code == 200, me.text
        cached[user.id] = (before, time.monotonic())
    # Another replica revokes them all: this process hears nothing of it.
    async with state.db.write() as session:
        await session.execute(
            update(AuthSessionRow)
            .where(AuthSessionRow.user_id.in_(list(cached)))
            .values(revoked_at=state.clock.now(), revoked_reason="logout")
        )
    last_passed = {user_id: after for user_id, (_, after) in cached.items()}
    refused_at: dict[str, float] = {}
    deadline = time.monotonic() + 5 * CACHE_S
    while len(refused_at) < len(users) and time.monotonic() < deadline:
        for user in users:
            if user.id not in refused_at:
                asked = time.monotonic()
                me = await api.http.get("/api/v1/users/me", headers=user.headers)
                if me.status_code == 401:
                    refused_at[user.id] = time.monotonic()
                else:
                    assert me.status_code == 200, me.text
                    last_passed[user.id] = asked
        await asyncio.sleep(0.01)
    assert len(refused_at) == len(users)
    # How long each session was trusted lies between these bounds, whatever the polling's
    # delays: it still passed when last asked, and its caching happened between `before`
    # and `after`.
    at_least = {u: last_passed[u] - cached[u][1] for u in refused_at}
    for user_id in refused_at:
        assert at_least[user_id] < CACHE_S  # a logout elsewhere counts within the cache time
    # And the cache was used: nothing was read again before the first session cached was
    # due. A session is due U(0.5, 1) cache times after it was cached, and a read then takes
    # along every busy session due within half a cache time, so a session cached last (the
    # twelve sign-ins take a while on a busy machine) may be refused sooner than half a
    # cache time after its own caching, but none before the first one was due.
    first_cached = min(before for before, _ in cached.values())
    assert min(refused_at.values()) - first_cached >= CACHE_S / 2


async def test_busy_sessions_are_read_together_not_one_read_each(
    api: ApiClient, state: AppState
) -> None:
    users = [await api.signup(Role.CONSUMER) for _ in range(12)]
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "auth_sessions" in statement:
            reads.append(statement)

    engine = state.db.read_engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        started = time.monotonic()
        while time.monotonic() - started < 3 * CACHE_S:
            for user in users:
                me = await api.http.get("/api/v1/users/me", headers=user.headers)
                assert me.status_code == 200, me.text
            await asyncio.sleep(0.01)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # Each session on its own (trusted for 0.5-1 of the cache time) would be read once at
    # first, then at least once per cache time: 12 × 4 = 48 reads or more. Read together:
    # the first round's 12, then about one every half of the cache time; the bound
    # leaves room for a slow machine.
    assert len(reads) < 12 + 18, len(reads)
