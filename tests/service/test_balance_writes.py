"""Balance rows a write transaction holds are written in one statement before the
session's next autoflushing statement, flush or commit, both amounts of each row; a row
changed again after that is written again, and new rows are inserted. A row not changed
since it was written is not written again, and reading more rows to lock them does not
write the held ones first: the commit does, once."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event, select

from wattx.store import upgrade_to_head
from wattx.store.balances import Asset, balance_for_update, held_balance, lock_balances
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


async def test_locking_more_rows_writes_nothing_and_a_written_row_is_not_written_again(
    database_url: str,
) -> None:
    async with _balances(database_url, "abc", free=1_000, locked=0) as (db, updates):
        async with db.write() as session:
            await lock_balances(session, map(_credit, "a"), lock=db.locks_rows)
            held = await balance_for_update(session, "a", Asset.CREDIT, lock=db.locks_rows)
            held.free -= 10
            held.locked += 10
            # Reading (and locking) other rows: the held row is not written for it.
            await lock_balances(session, map(_credit, "bc"), lock=db.locks_rows)
            assert updates == []
            other = await balance_for_update(session, "b", Asset.CREDIT, lock=db.locks_rows)
            other.free += 10
            # A statement: both rows in one UPDATE. Held rows are no ORM objects: the
            # session has nothing of theirs to flush.
            await session.execute(select(BalanceRow.account_id).limit(1))
            assert len(updates) == 1, updates
            assert not session.dirty
            assert not session.new
        # Unchanged since they were written: the commit writes nothing more.
        assert len(updates) == 1, updates
        assert await _amounts(db) == {"a": (990, 10), "b": (1_010, 0), "c": (1_000, 0)}


async def test_under_no_autoflush_a_statement_leaves_the_held_rows_for_the_commit(
    database_url: str,
) -> None:
    async with _balances(database_url, "ab", free=1_000, locked=0) as (db, updates):
        async with db.write() as session:
            held = await balance_for_update(session, "a", Asset.CREDIT, lock=db.locks_rows)
            held.free -= 1
            with session.no_autoflush:
                await session.execute(select(BalanceRow.account_id).limit(1))
            assert updates == []
        assert len(updates) == 1, updates
        assert await _amounts(db) == {"a": (999, 0), "b": (1_000, 0)}


async def test_no_balance_is_read_for_update_inside_a_savepoint(database_url: str) -> None:
    """A savepoint's rollback would have to forget the changes made in it and keep those
    made before it: rows are not read for update there; what changed before it is
    written at the commit."""
    async with _balances(database_url, "ab", free=1_000, locked=0) as (db, _updates):
        async with db.write() as session:
            held = await balance_for_update(session, "a", Asset.CREDIT, lock=db.locks_rows)
            held.free -= 1
            async with session.begin_nested():
                with pytest.raises(RuntimeError, match="inside a savepoint"):
                    await balance_for_update(session, "b", Asset.CREDIT, lock=db.locks_rows)
                with pytest.raises(RuntimeError, match="inside a savepoint"):
                    await lock_balances(session, map(_credit, "b"), lock=db.locks_rows)
        assert await _amounts(db) == {"a": (999, 0), "b": (1_000, 0)}


async def test_locking_reads_the_pairs_asked_for_and_no_other(database_url: str) -> None:
    """The keys go to the database as one parameter (arrays, or a JSON text on SQLite):
    the rows read are those of the (account, asset) pairs asked for, not of every
    account with every asset asked for, and a pair without a row reads as zero."""
    async with _balances(database_url, "abc", free=1_000, locked=0) as (db, _updates):
        async with db.write() as session:
            session.add_all(
                BalanceRow(account_id=a, asset="energy", free=50, locked=0) for a in "abc"
            )
        async with db.write() as session:
            wanted = [("a", Asset.CREDIT), ("b", Asset.ENERGY), ("d", Asset.CREDIT)]
            await lock_balances(session, wanted, lock=db.locks_rows)
            held = {
                (account, asset.value): held_balance(session, account, asset)
                for account in "abcd"
                for asset in Asset
            }
            found = {key: (row.free, row.locked) for key, row in held.items() if row is not None}
            assert found == {
                ("a", "credit"): (1_000, 0),
                ("b", "energy"): (50, 0),
                ("d", "credit"): (0, 0),
            }
