"""SQLite statements make one trip each to aiosqlite's thread (``wattx.store.sqlite_driver``),
and the cursor still tells what a DB-API cursor tells: rows and their description, row
counts, the last row id, the driver's errors as SQLAlchemy's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import aiosqlite
import pytest
from sqlalchemy import CursorResult, text
from sqlalchemy import exc as sa_exc

from wattx.store.db import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'driver.sqlite3'}")
    try:
        async with database.write() as session:
            await session.execute(
                text("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE, qty INTEGER)")
            )
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The calls made on aiosqlite's threads from now on, by name."""
    made: list[str] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(getattr(fn, "__name__", type(fn).__name__))
        return await original(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return made


async def test_a_write_transaction_makes_one_trip_a_statement(
    db: Database, trips: list[str]
) -> None:
    async with db.write() as session:
        await session.execute(text("INSERT INTO item (name, qty) VALUES ('a', 1)"))
        rows = (await session.execute(text("SELECT name, qty FROM item"))).all()
        await session.execute(
            text("UPDATE item SET qty = :qty WHERE name = :name"),
            [{"qty": 2, "name": "a"}, {"qty": 3, "name": "b"}],
        )
    assert [tuple(row) for row in rows] == [("a", 1)]
    # BEGIN IMMEDIATE and the three statements, one trip each; then the commit and the
    # pool's rollback as it takes the connection back. SQLAlchemy's own cursor: 15 trips.
    assert trips == ["on_its_thread"] * 4 + ["commit", "rollback"], trips


async def test_the_cursor_tells_what_a_dbapi_cursor_tells(db: Database) -> None:
    async with db.write() as session:
        inserted = cast(
            CursorResult[Any],
            await session.execute(text("INSERT INTO item (name, qty) VALUES ('a', 1)")),
        )
        assert inserted.lastrowid == 1
        many = cast(
            CursorResult[Any],
            await session.execute(
                text("INSERT INTO item (name, qty) VALUES (:name, :qty)"),
                [{"name": "b", "qty": 2}, {"name": "c", "qty": 3}],
            ),
        )
        assert many.rowcount == 2
        updated = cast(
            CursorResult[Any],
            await session.execute(text("UPDATE item SET qty = qty + 10 WHERE qty > 1")),
        )
        assert updated.rowcount == 2
        nothing = await session.execute(text("SELECT name, qty FROM item WHERE qty > 100"))
        assert list(nothing.keys()) == ["name", "qty"]
        assert nothing.all() == []
        found = await session.execute(text("SELECT name, qty FROM item ORDER BY id"))
        assert found.fetchone() == ("a", 1)
        assert found.fetchmany(1) == [("b", 12)]
        assert found.fetchall() == [("c", 13)]
    # Streamed results keep SQLAlchemy's server-side cursor.
    async with db.read() as session:
        streamed = await session.stream(text("SELECT name FROM item ORDER BY id"))
        assert [row.name async for row in streamed] == ["a", "b", "c"]


async def _write(db: Database, *statements: str) -> None:
    async with db.write() as session:
        for statement in statements:
            await session.execute(text(statement))


async def test_driver_errors_are_sqlalchemys_and_the_connection_goes_on(db: Database) -> None:
    insert = "INSERT INTO item (name, qty) VALUES ('a', {})"
    with pytest.raises(sa_exc.IntegrityError):
        await _write(db, insert.format(1), insert.format(2))
    with pytest.raises(sa_exc.OperationalError):
        await _write(db, "SELECT nothing FROM nowhere")
    await _write(db, insert.format(3))
    async with db.read() as session:
        assert (await session.execute(text("SELECT name, qty FROM item"))).all() == [("a", 3)]
