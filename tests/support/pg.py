"""A private PostgreSQL database per test or session, on the server at 127.0.0.1:5432.

The database is created with a unique name before use and dropped (with every
connection to it forced out) afterwards, also when a test closed it to new
connections. A missing server is a failure, never a skip.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import asyncpg

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def asyncpg_url(name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on the test server."""
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


def run_in_thread(action: Callable[[], Coroutine[object, object, None]]) -> None:
    """Run ``action`` to completion on an event loop of its own (fixtures may be
    resolved while a test's loop runs; a thread has its own)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: asyncio.run(action())).result()


@contextmanager
def private_database(prefix: str) -> Iterator[str]:
    """Create a database named ``prefix`` + a random suffix; yield its name; drop it."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            # A test may have closed it to new connections (a simulated outage).
            await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    run_in_thread(create)
    try:
        yield name
    finally:
        run_in_thread(drop)
