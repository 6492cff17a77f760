"""The live-session cache: how long a session revoked by another replica still passes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from sqlalchemy import update

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


async def test_sessions_revoked_elsewhere_are_refused_within_the_cache_time_not_all_at_once(
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
    at_most = {u: refused_at[u] - cached[u][0] for u in refused_at}
    for user_id in refused_at:
        assert at_least[user_id] < CACHE_S  # a logout elsewhere counts within the cache time
        assert at_most[user_id] >= CACHE_S / 2  # and every session was trusted half of it
    # Some session was certainly trusted for less time than another: sessions cached
    # together are not all re-read at the same instant. Trusted for exactly the cache time,
    # as before, every lower bound would be below every upper bound.
    assert max(at_least.values()) > min(at_most.values())
