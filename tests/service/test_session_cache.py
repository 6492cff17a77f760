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
    users = [await api.signup(Role.CONSUMER) for _ in range(24)]
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
    refused_at: dict[str, float] = {}
    deadline = time.monotonic() + 3 * CACHE_S
    while len(refused_at) < len(users) and time.monotonic() < deadline:
        for user in users:
            if user.id not in refused_at:
                me = await api.http.get("/api/v1/users/me", headers=user.headers)
                if me.status_code == 401:
                    refused_at[user.id] = time.monotonic()
                else:
                    assert me.status_code == 200, me.text
        await asyncio.sleep(0.01)
    assert len(refused_at) == len(users)
    # Each session was trusted at least half the cache time and, allowing for the time
    # the polling takes, at most all of it...
    for user_id, refused in refused_at.items():
        before, after = cached[user_id]
        assert before + CACHE_S / 2 <= refused <= after + CACHE_S + 0.5
    # ...and for times spread over that range, so clients that started together do not all
    # read their sessions again at the same instant. Trusted for exactly the cache time, as
    # before, they would differ by the polling's delays only; 24 draws from half a second
    # all landing within 0.2 s of each other: about 1 in 10^8.
    trusted = [refused - cached[user_id][1] for user_id, refused in refused_at.items()]
    assert max(trusted) - min(trusted) >= 0.2
