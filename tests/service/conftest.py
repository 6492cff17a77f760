"""Fixtures for the service tests: a database per backend, the app, an HTTP client.

Every API test runs on SQLite and on PostgreSQL. Migrations run once per
session (per pytest-xdist worker): SQLite tests get a copy of a migrated
template file; the PostgreSQL database is created and migrated once per
session on 127.0.0.1:5432, under a name of its own, and emptied before each
test. If the server is not there the tests fail (they never skip).

Other folders reuse these fixtures by importing them into their conftest
(``from service.conftest import database_url, pg_url, ...``); see
``tests/README.md``.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from support.migrations import empty_database_url
from support.operator import use_worker_operator
from support.pg import asyncpg_url, private_database, run_in_thread
from wattx.api.app import create_app
from wattx.api.state import AppState
from wattx.config import Settings
from wattx.services.identity.accounts import SCRATCH_PASSWORD_HASHER
from wattx.store import Database, upgrade_to_head
from wattx.store.models import Base

from .client import ApiClient

START = datetime(2026, 6, 1, 10, 0, 0, tzinfo=UTC)
TEST_KEYRING_SECRET = "test-keyring-secret-of-sufficient-length"
"""The keyring secret of every test service: its scrypt key is derived once per worker."""


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
    """A PostgreSQL database of this session (worker) alone, migrated to head, dropped after."""
    with private_database("wattx_test") as name:
        url = asyncpg_url(name)

        async def migrate() -> None:
            db = Database(url)
            try:
                await upgrade_to_head(db)
            finally:
                await db.dispose()

        run_in_thread(migrate)
        yield url


_template: Path | None = None


def sqlite_template() -> Path:
    """A SQLite file migrated to head once per process (xdist worker); tests get copies.

    A plain function rather than a fixture, so that every folder importing
    ``database_url`` gets it without importing another name.
    """
    global _template
    if _template is None:
        directory = Path(tempfile.mkdtemp(prefix="wattx-template-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        path = directory / "wattx.sqlite3"

        async def build() -> None:
            db = Database(f"sqlite+aiosqlite:///{path}")
            try:
                await upgrade_to_head(db)
            finally:
                await db.dispose()

        run_in_thread(build)
        # Closing the last connection checkpointed the write-ahead log into the file.
        assert not path.with_name(path.name + "-wal").exists()
        _template = path
    return _template


def migrated_sqlite_url(template: Path, directory: Path) -> str:
    """A fresh copy of the migrated template in ``directory``, as a database URL."""
    target = directory / "wattx.sqlite3"
    shutil.copyfile(template, target)
    return f"sqlite+aiosqlite:///{target}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new database with no tables at all, private to this test (a migration's test
    fills it as an older revision left it, then migrates): SQLite, then PostgreSQL."""
    backend = "sqlite" if request.param == "sqlite" else "postgresql"
    with empty_database_url(backend, tmp_path) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database at the newest migration, private to this test: SQLite, then PostgreSQL."""
    if request.param == "sqlite":
        return migrated_sqlite_url(sqlite_template(), tmp_path)
    url: str = request.getfixturevalue("pg_url")
    # Every table emptied, children first, with DELETE rather than TRUNCATE: the tables hold
    # a test's few rows, and TRUNCATE gives each table and index new files (0.21 s of the
    # machine's CPU before each PostgreSQL test; these DELETEs in one round trip, 0.03 s).
    script = "; ".join(
        f'DELETE FROM "{table.name}"' for table in reversed(Base.metadata.sorted_tables)
    )
    db = Database(url)
    try:
        async with db.write() as session:
            connection = await (await session.connection()).get_raw_connection()
            # asyncpg runs a script without parameters in one round trip.
            await connection.driver_connection.execute(script)
    finally:
        await db.dispose()
    return url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def service_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """The service's settings in tests: fixed signing and keyring secrets (the keyring's
    scrypt then runs once per worker, not once per test), rate limits no test reaches,
    quick keep-alives and quiet logs; ``overrides`` for what a test area needs besides."""
    values: dict[str, Any] = {
        "jwt_secret": "test-secret-key-of-sufficient-length",
        "keyring_secret": TEST_KEYRING_SECRET,
        "rate_limit_auth_per_window": 10_000,
        "rate_limit_default_per_window": 100_000,
        "sse_keepalive_s": 0.5,
        "log_level": "WARNING",
    }
    return Settings(data_dir=data_dir, database_url=database_url, **(values | overrides))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return service_settings(database_url, tmp_path)


def in_process_app(settings: Settings, *, own_operator: bool = False, **options: Any) -> FastAPI:
    """``create_app(settings, **options)`` for a service a test runs in its own process.

    Its embedded chain's operator is the worker's (``support.operator``), so that its
    deployment is copied rather than run again, unless ``own_operator`` asks for the key
    the service makes itself, as ``wattx up`` does.

    Passwords are hashed with Argon2id at its minimum cost, as the simulator's scratch
    service does: at the service's cost (about 0.1 s of CPU a hash or check), the sign-ups
    and logins of the suite's fixtures took minutes. What the cost is in a deployment is
    checked by ``tests/sim_runner/test_scratch_passwords.py``, and every real ``wattx up``
    process a test starts keeps it.
    """
    if not own_operator and "chain" not in options and settings.chain_rpc_url is None:
        use_worker_operator(settings.data_dir)
    return create_app(settings, password_hasher=SCRATCH_PASSWORD_HASHER, **options)


@pytest.fixture
async def app(settings: Settings, clock: ManualClock) -> AsyncIterator[FastAPI]:
    application = in_process_app(settings, clock=clock, run_epoch_clock=False)
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
