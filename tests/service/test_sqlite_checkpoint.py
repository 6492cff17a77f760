"""SQLite's write-ahead log: writers never checkpoint in a commit; the checkpoint task does."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text

from wattx.store.db import Database


async def test_commits_leave_the_log_to_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "wattx.sqlite3"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        async with db.write() as session:
            await session.execute(text("CREATE TABLE t (v BLOB)"))
        # About 3,000 pages: thrice the size at which a commit would checkpoint.
        for _ in range(30):
            async with db.write() as session:
                await session.execute(
                    text("INSERT INTO t VALUES (randomblob(4096))"),
                    [{}] * 100,
                )
        wal = path.with_name(path.name + "-wal")
        size_before = wal.stat().st_size
        assert size_before > 2_000 * 4096
        await db.checkpoint()
        connection = sqlite3.connect(path)
        try:
            _busy, log, done = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            connection.close()
        # Everything logged has been copied into the database file.
        assert log == done
        assert log > 2_000
        async with db.read() as session:
            assert await session.scalar(text("SELECT count(*) FROM t")) == 3_000
    finally:
        await db.dispose()
