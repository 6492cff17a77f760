"""SQLite readers keep their connections: concurrent requests do not open new ones each time."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import event, text

from wattx.store.db import Database


async def test_concurrent_reads_reuse_the_pooled_connections(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'wattx.sqlite3'}")
    opened = 0

    @event.listens_for(db.read_engine.sync_engine, "connect")
    def _count(_dbapi_connection: object, _record: object) -> None:
        nonlocal opened
        opened += 1

    both_in = asyncio.Barrier(15)

    async def one_read() -> None:
        async with db.read() as session:
            assert await session.scalar(text("SELECT 1")) == 1
            # All fifteen hold a connection at once.
            await asyncio.wait_for(both_in.wait(), timeout=30)

    try:
        await asyncio.gather(*(one_read() for _ in range(15)))
        assert opened == 15
        # The same load again: every connection is still open, none is made.
        await asyncio.gather(*(one_read() for _ in range(15)))
        assert opened == 15
    finally:
        await db.dispose()
