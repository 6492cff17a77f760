"""Balance rows a write transaction holds are written in one statement when the session
flushes, both amounts of each row, instead of one statement per set of changed columns;
a row changed again after a flush is written again, and new rows are still inserted.
Written rows leave the flush nothing to do, and reading more rows to lock them does not
write the held ones first: the commit does, once."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from wattx.store import upgrade_to_head
from wattx.store.balances import Asset, balance_for_update, lock_balances
from wattx.store.db import Database
from wattx.store.models import BalanceRow


def _credit(account: str) -> tuple[str, Asset]:
    return account, Asset.CREDIT


async def _amounts(db: Database) -> dict[str, tuple[int, int]]:
    async with db.read() as session:
        rows = await session.scalars(select(BalanceRow).where(BalanceRow.asset == "credit"))
        return {row.account_id: (row.free, row.locked) for row in rows}


@contextlib.asynccontextmanager
async def _balances(
    database_url: str, accounts: str, *, free: int, locked: int
) -> AsyncIterator[tuple[Database, list[str]]]:
    """A migrated database with a credit balance for each of ``accounts``, and the list
    of the ``UPDATE balances`` statements it runs from then on."""
    db = Database(database_url)
    updates: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        if statement.lower().lstrip().startswith("update balances"):
            updates.append(statement)

    engine = db.write_engine.sync_engine
    try:
        await upgrade_to_head(db)
        async with db.write() as session:
            session.add_all(
                BalanceRow(account_id=a, asset="credit", free=free, locked=locked) for a in accounts
            )
        event.listen(engine, "before_cursor_execute", record)
        yield db, updates
    finally:
        if event.contains(engine, "before_cursor_execute", record):
            event.remove(engine, "before_cursor_execute", record)
        await db.dispose()


async def test_changed_rows_are_one_update_and_each_row_is_written_again_when_it_changes(
    database_url: str,
) -> None:
    async with _balances(database_url, "abcd", free=1_000, locked=100) as (db, updates):
        async with db.write() as session:
            await lock_balances(session, map(_credit, "abcd"), lock=db.locks_rows)
            # Held now: no statement to hand them out.
            both, free_only, locked_only = [
                await balance_for_update(session, a, Asset.CREDIT, lock=db.locks_rows)
                for a in "abc"
            ]
            both.free -= 10
            both.locked += 10
            free_only.free += 5
            locked_only.locked -= 7
            # A statement makes the session flush: the three rows in one UPDATE.
            await session.execute(select(BalanceRow.account_id).limit(1))
            assert len(updates) == 1, updates
            # A row the transaction makes (SQLite: at the flush) or inserts (PostgreSQL).
            new = await balance_for_update(session, "e", Asset.CREDIT, lock=db.locks_rows)
            new.free += 3
            both.free -= 1  # changed again after the flush: written again at the commit
        assert len(updates) == 2, updates
        assert await _amounts(db) == {
            "a": (989, 110),
            "b": (1_005, 100),
            "c": (1_000, 93),
            "d": (1_000, 100),
            "e": (3, 0),
        }


async def test_written_rows_leave_the_flush_no_work_and_locking_more_rows_writes_nothing(
    database_url: str,
) -> None:
    flushes: list[int] = []

    def flushed(_session: Session, _context: Any) -> None:
        flushes.append(1)

    async with _balances(database_url, "abc", free=1_000, locked=0) as (db, updates):
        async with db.write() as session:
            event.listen(session.sync_session, "after_flush", flushed)
            await lock_balances(session, map(_credit, "a"), lock=db.locks_rows)
            held = await balance_for_update(session, "a", Asset.CREDIT, lock=db.locks_rows)
            held.free -= 10
            held.locked += 10
            # Reading (and locking) other rows: the held row is not written for it.
            await lock_balances(session, map(_credit, "bc"), lock=db.locks_rows)
            assert updates == []
            other = await balance_for_update(session, "b", Asset.CREDIT, lock=db.locks_rows)
            other.free += 10
            # A flush: both rows in one statement, and nothing left for the flush itself.
            await session.flush()
            assert len(updates) == 1, updates
            assert flushes == [], "the flush had work after the held rows were written"
            assert not session.dirty
        assert len(updates) == 1, updates
        assert await _amounts(db) == {"a": (990, 10), "b": (1_010, 0), "c": (1_000, 0)}
