"""Fixtures for the service tests: a database per backend, the app, an HTTP client.

Every API test runs on SQLite and on PostgreSQL. The PostgreSQL database is
created fresh once per session on 127.0.0.1:5432 and emptied before each
test; if the server is not there the tests fail (they never skip).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from support.pg import asyncpg_url, private_database
from wattx.api.app import create_app
from wattx.api.state import AppState
from wattx.config import Settings
from wattx.store import Database, upgrade_to_head
from wattx.store.models import Base

from .client import ApiClient

START = datetime(2026, 6, 1, 10, 0, 0, tzinfo=UTC)


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime = START) -> None:
        self.current = start

    def now(self) -> datetime:
        return self.current

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    with private_database("wattx_test") as name:
        yield asyncpg_url(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'wattx.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_url")
    db = Database(url)
    try:
        await upgrade_to_head(db)
        if not db.is_sqlite:
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            async with db.write() as session:
                await session.execute(text(f"TRUNCATE {tables}"))
    finally:
        await db.dispose()
    return url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        jwt_secret="test-secret-key-of-sufficient-length",
        rate_limit_auth_per_window=10_000,
        rate_limit_default_per_window=100_000,
        sse_keepalive_s=0.5,
        log_level="WARNING",
    )


@pytest.fixture
async def app(settings: Settings, clock: ManualClock) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock=clock, run_epoch_clock=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def state(app: FastAPI) -> AppState:
    result: AppState = app.state.wattx
    return result


@pytest.fixture
async def api(app: FastAPI, state: AppState) -> AsyncIterator[ApiClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://wattx.test") as http:
        yield ApiClient(http, state)
