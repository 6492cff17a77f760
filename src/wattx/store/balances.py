"""Repository of off-chain balances: free and locked amounts per account and asset.

Every change goes through :func:`balance_for_update`, which locks the row on
PostgreSQL; on SQLite the write transaction already holds the database lock.
A row read that way stays locked until the transaction ends, so the session
remembers it and hands the same row out again without another round trip;
:func:`lock_balances` reads many at once for writers that touch many accounts.

A row handed out is a plain :class:`HeldBalance`, not an ORM object: the order
writer changes one for every order it escrows (a thousand in a batch), and an
ORM instance's instrumented attributes cost more than the change itself. The
held rows that changed are written, both amounts of each in one statement
(and the rows new to the table in another), before the session runs a
statement while it autoflushes, before it flushes ORM objects and before it
commits: every query of the transaction that could see them sees them, and the
commit includes them. Rows are not read for update inside a savepoint, whose rollback
would have to forget what changed in it and not what changed before it (no writer
of balances uses one).

:func:`move_balance` changes a balance without a round trip: at once on a row
the transaction holds, otherwise when the transaction first reads that row
(:func:`lock_moved_balances` reads every such row in one statement). A writer
that moves many counterparties' balances (a batch of trades) reads them once.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    Select,
    String,
    Table,
    bindparam,
    event,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, UOWTransaction

from wattx.store.bulk import driver_sql
from wattx.store.dialect import is_postgres
from wattx.store.models import BalanceRow


class Asset(StrEnum):
    CREDIT = "credit"  # micro-units
    ENERGY = "energy"  # Wh


FEE_ACCOUNT = "fees"
"""Receives market fees and wheeling charges."""

GRID_ACCOUNT = "grid"
"""Receives the energy lost between zones, so energy is conserved."""


@dataclasses.dataclass(slots=True, eq=False)
class HeldBalance:
    """A balance row this transaction has read for update, or makes: change ``free`` and
    ``locked`` in place; the session writes them (see the module's docstring)."""

    account_id: str
    asset: str
    free: int
    locked: int
    # What the database holds, (free, locked); None for a row not in the table yet.
    written: tuple[int, int] | None


_TABLE: Table = BalanceRow.__table__  # type: ignore[assignment]
_COLUMNS = (_TABLE.c.account_id, _TABLE.c.asset, _TABLE.c.free, _TABLE.c.locked)


def _held(row: Sequence[Any]) -> HeldBalance:
    """A row of :data:`_COLUMNS` as read: what it holds is what the database holds."""
    account_id, asset, free, locked = row
    return HeldBalance(account_id, asset, free, locked, (free, locked))


async def balance_for_update(
    session: AsyncSession, account_id: str, asset: Asset, *, lock: bool
) -> HeldBalance:
    """The balance row, created at zero when absent, locked for this transaction.

    With ``lock`` (PostgreSQL) the row is first inserted if missing with
    ``ON CONFLICT DO NOTHING``, so two first-time writers cannot both insert,
    then read ``FOR UPDATE``. Without it (SQLite) the transaction already holds
    the database's write lock.
    """
    held = _held_rows(session)
    known = held.get((account_id, asset.value))
    if known is not None:
        return known
    _refuse_savepoint(session)
    query = select(*_COLUMNS).where(
        _TABLE.c.account_id == account_id, _TABLE.c.asset == asset.value
    )
    if lock:
        await session.execute(
            pg_insert(_TABLE)
            .values(account_id=account_id, asset=asset.value, free=0, locked=0)
            .on_conflict_do_nothing(index_elements=["account_id", "asset"])
        )
        row = _held((await session.execute(query.with_for_update())).one())
    else:
        found = (await session.execute(query)).first()
        row = _held(found) if found is not None else _new_zero_row(account_id, asset.value)
    _hold(session, row)
    return row


async def lock_balances(
    session: AsyncSession, keys: Iterable[tuple[str, Asset]], *, lock: bool
) -> None:
    """Read (and on PostgreSQL lock) many balance rows in one statement.

    Later :func:`balance_for_update` calls for these keys in the same
    transaction need no round trip. Rows are locked in key order, the order
    every multi-row locker uses, so two of them cannot deadlock each other.
    On PostgreSQL, rows not there yet are then inserted (``ON CONFLICT DO NOTHING``,
    in key order too) and read for update in a second statement; the usual case,
    where every row exists, is the one statement. (Inserting every row first cost a
    statement per call, compiled anew each time for its number of rows.)
    """
    held = _held_rows(session)
    wanted = sorted({(account, asset.value) for account, asset in keys} - held.keys())
    if not wanted:
        return
    _refuse_savepoint(session)
    for row in await _select_balances(session, wanted, lock=lock):
        _hold(session, row)
    missing = [key for key in wanted if key not in held]
    if not missing:
        return
    if lock:
        await session.execute(
            pg_insert(_TABLE).on_conflict_do_nothing(index_elements=["account_id", "asset"]),
            [{"account_id": a, "asset": s, "free": 0, "locked": 0} for a, s in missing],
        )
        for row in await _select_balances(session, missing, lock=lock):
            _hold(session, row)
    else:
        for account, asset in missing:
            _hold(session, _new_zero_row(account, asset))


# The keys go as arrays on PostgreSQL and as one JSON text on SQLite: one statement,
# prepared once, whatever their number. An expanded ``IN`` list was rendered anew for
# each call and its values bound one by one, about 0.25 ms of the writer's CPU a call
# (docs/operations.md, "Single orders: lists as one parameter").
_WANTED_PG = (
    func.unnest(
        bindparam("accounts", type_=ARRAY(String)), bindparam("assets", type_=ARRAY(String))
    )
    .table_valued("account_id", "asset")
    .render_derived("wanted")
)
_WANTED_SQLITE = func.json_each(bindparam("keys", type_=String)).table_valued("value")


def _balances_of(wanted: Select[Any]) -> Select[Any]:
    return (
        select(*_COLUMNS)
        .where(tuple_(_TABLE.c.account_id, _TABLE.c.asset).in_(wanted))
        .order_by(_TABLE.c.account_id, _TABLE.c.asset)
    )


_SELECT_BALANCES_PG = _balances_of(select(_WANTED_PG.c.account_id, _WANTED_PG.c.asset))
_LOCK_BALANCES_PG = _SELECT_BALANCES_PG.with_for_update()
_SELECT_BALANCES_SQLITE = _balances_of(
    select(
        func.json_extract(_WANTED_SQLITE.c.value, "$[0]"),
        func.json_extract(_WANTED_SQLITE.c.value, "$[1]"),
    )
)


async def _select_balances(
    session: AsyncSession, keys: list[tuple[str, str]], *, lock: bool
) -> list[HeldBalance]:
    if is_postgres(session):
        statement = _LOCK_BALANCES_PG if lock else _SELECT_BALANCES_PG
        parameters: dict[str, Any] = {
            "accounts": [account for account, _ in keys],
            "assets": [asset for _, asset in keys],
        }
    else:
        # SQLite has no row locks: the write transaction holds the database's.
        statement = _SELECT_BALANCES_SQLITE
        parameters = {"keys": json.dumps(keys)}
    # Only rows the transaction does not hold are read, and nothing it changed so far
    # decides which those are or what they hold: its changes wait for the next write
    # (the commit's) instead of one of their own before this statement.
    with session.no_autoflush:
        result = await session.execute(statement, parameters)
    return [_held(row) for row in result]


def held_balance(session: AsyncSession, account_id: str, asset: Asset) -> HeldBalance | None:
    """The row, when this transaction has already read it for update (no round trip)."""
    return _held_rows(session).get((account_id, asset.value))


def move_balance(
    session: AsyncSession, account_id: str, asset: Asset, *, free: int = 0, locked: int = 0
) -> None:
    """Add ``free`` and ``locked`` (either may be negative) to the balance: at once when
    this transaction holds the row, otherwise when it reads it, which
    :func:`balance_for_update`, :func:`lock_balances` or :func:`lock_moved_balances` do.

    No rule is checked here: the caller moves what its own rules allow (a trade's
    transfer out of escrow it locked, a credit). Whoever reads the row in this
    transaction sees the moves made so far.
    """
    row = held_balance(session, account_id, asset)
    if row is not None:
        row.free += free
        row.locked += locked
        return
    moves = _pending_moves(session)
    pending = moves.get((account_id, asset.value), (0, 0))
    moves[(account_id, asset.value)] = (pending[0] + free, pending[1] + locked)


async def lock_moved_balances(session: AsyncSession, *, lock: bool) -> None:
    """Read (and on PostgreSQL lock) every row :func:`move_balance` is waiting for, in one
    statement, and apply its moves: call it before the transaction commits."""
    moves = _pending_moves(session)
    if moves:
        await lock_balances(
            session, [(account, Asset(asset)) for account, asset in moves], lock=lock
        )


async def balances_of(session: AsyncSession, account_id: str) -> dict[Asset, BalanceRow]:
    rows = await session.scalars(select(BalanceRow).where(BalanceRow.account_id == account_id))
    return {Asset(row.asset): row for row in rows}


_HELD_ROWS = "wattx.balances.held"


def _held_rows(session: AsyncSession) -> dict[tuple[str, str], HeldBalance]:
    """The balance rows this session's transaction has read for update, by key.

    Sessions live for one transaction here (see :class:`wattx.store.db.Database`),
    so what the session holds is exactly what the transaction has locked.
    """
    held: dict[tuple[str, str], HeldBalance] = session.info.setdefault(_HELD_ROWS, {})
    return held


_PENDING_MOVES = "wattx.balances.pending_moves"


def _pending_moves(session: AsyncSession) -> dict[tuple[str, str], tuple[int, int]]:
    """Moves of rows this transaction has not read yet: (free, locked) by key."""
    moves: dict[tuple[str, str], tuple[int, int]] = session.info.setdefault(_PENDING_MOVES, {})
    return moves


def _hold(session: AsyncSession, row: HeldBalance) -> None:
    """Remember a row read for update, with the moves that were waiting for it."""
    key = (row.account_id, row.asset)
    _held_rows(session)[key] = row
    pending = _pending_moves(session).pop(key, None)
    if pending is not None:
        row.free += pending[0]
        row.locked += pending[1]


def _refuse_savepoint(session: AsyncSession) -> None:
    if session.in_nested_transaction():
        raise RuntimeError("balances are not read for update inside a savepoint")


def _new_zero_row(account_id: str, asset: str) -> HeldBalance:
    return HeldBalance(account_id, asset, 0, 0, None)


_UPDATE = (
    update(_TABLE)
    .where(_TABLE.c.account_id == bindparam("b_account"), _TABLE.c.asset == bindparam("b_asset"))
    .values(free=bindparam("b_free"), locked=bindparam("b_locked"))
)
# The parameters of _UPDATE in the order the driver takes them (see _write_held_rows).
_UPDATE_ORDER = ("b_free", "b_locked", "b_account", "b_asset")


def _write_held_rows(session: Session) -> None:
    """Insert the held rows new to the table and update those that changed since they were
    read or written: one statement each, both amounts of every row."""
    held: dict[tuple[str, str], HeldBalance] | None = session.info.get(_HELD_ROWS)
    if not held:
        return
    new = [row for row in held.values() if row.written is None]
    changed = [
        row
        for row in held.values()
        if row.written is not None and row.written != (row.free, row.locked)
    ]
    if not new and not changed:
        return
    # The session's own connection: no session event runs again for these statements.
    connection = session.connection()
    if new:
        connection.execute(
            insert(_TABLE),
            [
                {"account_id": r.account_id, "asset": r.asset, "free": r.free, "locked": r.locked}
                for r in new
            ],
        )
    if changed:
        # Straight to the driver's own many-row execution: through SQLAlchemy, the
        # statement's parameters were built row by row, most of its CPU. (One ``UPDATE
        # ... FROM unnest(...)`` of arrays cost less CPU still on PostgreSQL, but the
        # planner joined it to a scan of the whole table, and at 500 orders a second the
        # p99 of single orders went from about 16 ms to about 25: docs/operations.md,
        # "Single orders: lists as one parameter".)
        connection.exec_driver_sql(
            driver_sql(connection.dialect, _UPDATE, _UPDATE_ORDER),
            [(r.free, r.locked, r.account_id, r.asset) for r in changed],
        )
    for row in (*new, *changed):
        row.written = (row.free, row.locked)


@event.listens_for(Session, "do_orm_execute")
def _write_before_statement(state: ORMExecuteState) -> None:
    # As an ORM object's change would be flushed before a statement of an autoflushing
    # session: a statement under ``no_autoflush`` (reading rows to lock) leaves them.
    if state.session.autoflush:
        _write_held_rows(state.session)


@event.listens_for(Session, "before_flush")
def _write_before_flush(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    _write_held_rows(session)


@event.listens_for(Session, "before_commit")
def _write_before_commit(session: Session) -> None:
    # A move never applied would vanish with the commit: a defect, so nothing commits.
    if session.info.get(_PENDING_MOVES):
        raise RuntimeError("balance moves were not applied before the commit")
    _write_held_rows(session)


@event.listens_for(Session, "after_soft_rollback")
def _forget_held_rows(session: Session, _previous: SessionTransaction) -> None:
    # A rollback (also to a savepoint) may release locks and discard new rows.
    session.info.pop(_HELD_ROWS, None)
    session.info.pop(_PENDING_MOVES, None)
