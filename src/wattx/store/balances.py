"""Repository of off-chain balances: free and locked amounts per account and asset.

Every change goes through :func:`balance_for_update`, which locks the row on
PostgreSQL; on SQLite the write transaction already holds the database lock.
A row read that way stays locked until the transaction ends, so the session
remembers it and hands the same row out again without another round trip;
:func:`lock_balances` reads many at once for writers that touch many accounts.

:func:`move_balance` changes a balance without a round trip: at once on a row
the transaction holds, otherwise when the transaction first reads that row
(:func:`lock_moved_balances` reads every such row in one statement). A writer
that moves many counterparties' balances (a batch of trades) reads them once.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from sqlalchemy import Table, bindparam, event, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction, UOWTransaction
from sqlalchemy.orm.attributes import instance_state
from sqlalchemy.orm.state import InstanceState

from wattx.store.models import BalanceRow


class Asset(StrEnum):
    CREDIT = "credit"  # micro-units
    ENERGY = "energy"  # Wh


FEE_ACCOUNT = "fees"
"""Receives market fees and wheeling charges."""

GRID_ACCOUNT = "grid"
"""Receives the energy lost between zones, so energy is conserved."""


async def balance_for_update(
    session: AsyncSession, account_id: str, asset: Asset, *, lock: bool
) -> BalanceRow:
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
    query = select(BalanceRow).where(
        BalanceRow.account_id == account_id, BalanceRow.asset == asset.value
    )
    if lock:
        await session.execute(
            pg_insert(BalanceRow)
            .values(account_id=account_id, asset=asset.value, free=0, locked=0)
            .on_conflict_do_nothing(index_elements=["account_id", "asset"])
        )
        locked = query.with_for_update().execution_options(populate_existing=True)
        row = (await session.scalars(locked)).one()
    else:
        found = (await session.scalars(query)).first()
        row = found if found is not None else _new_zero_row(session, account_id, asset.value)
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
    for row in await _select_balances(session, wanted, lock=lock):
        _hold(session, row)
    missing = [key for key in wanted if key not in held]
    if not missing:
        return
    if lock:
        await session.execute(
            pg_insert(BalanceRow).on_conflict_do_nothing(index_elements=["account_id", "asset"]),
            [{"account_id": a, "asset": s, "free": 0, "locked": 0} for a, s in missing],
        )
        for row in await _select_balances(session, missing, lock=lock):
            _hold(session, row)
    else:
        for account, asset in missing:
            _hold(session, _new_zero_row(session, account, asset))


# Built once: building them anew for every call was a tenth of a small group's writing.
_SELECT_BALANCES = (
    select(BalanceRow)
    .where(tuple_(BalanceRow.account_id, BalanceRow.asset).in_(bindparam("keys", expanding=True)))
    .order_by(BalanceRow.account_id, BalanceRow.asset)
)
_LOCK_BALANCES = _SELECT_BALANCES.with_for_update().execution_options(populate_existing=True)


async def _select_balances(
    session: AsyncSession, keys: list[tuple[str, str]], *, lock: bool
) -> Iterable[BalanceRow]:
    # Only rows the transaction does not hold are read, and nothing it changed so far
    # decides which those are or what they hold: its changes wait for the next flush
    # (the commit's) instead of a flush of their own before this statement.
    with session.no_autoflush:
        return await session.scalars(_LOCK_BALANCES if lock else _SELECT_BALANCES, {"keys": keys})


def held_balance(session: AsyncSession, account_id: str, asset: Asset) -> BalanceRow | None:
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


def _held_rows(session: AsyncSession) -> dict[tuple[str, str], BalanceRow]:
    """The balance rows this session's transaction has read for update, by key.

    Sessions live for one transaction here (see :class:`wattx.store.db.Database`),
    so what the session holds is exactly what the transaction has locked.
    """
    held: dict[tuple[str, str], BalanceRow] = session.info.setdefault(_HELD_ROWS, {})
    return held


_PENDING_MOVES = "wattx.balances.pending_moves"


def _pending_moves(session: AsyncSession) -> dict[tuple[str, str], tuple[int, int]]:
    """Moves of rows this transaction has not read yet: (free, locked) by key."""
    moves: dict[tuple[str, str], tuple[int, int]] = session.info.setdefault(_PENDING_MOVES, {})
    return moves


def _hold(session: AsyncSession, row: BalanceRow) -> None:
    """Remember a row read for update, with the moves that were waiting for it."""
    key = (row.account_id, row.asset)
    _held_rows(session)[key] = row
    pending = _pending_moves(session).pop(key, None)
    if pending is not None:
        row.free += pending[0]
        row.locked += pending[1]


def _new_zero_row(session: AsyncSession, account_id: str, asset: str) -> BalanceRow:
    row = BalanceRow(account_id=account_id, asset=asset, free=0, locked=0)
    session.add(row)
    return row


_TABLE: Table = BalanceRow.__table__  # type: ignore[assignment]
_UPDATE = (
    update(_TABLE)
    .where(_TABLE.c.account_id == bindparam("b_account"), _TABLE.c.asset == bindparam("b_asset"))
    .values(free=bindparam("b_free"), locked=bindparam("b_locked"))
)


@event.listens_for(Session, "before_flush")
def _write_changed_rows(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    """Write the held rows that changed in one statement, both amounts of each, before the
    session flushes. Left to the flush, they went as one statement per set of changed
    columns (free and locked, free alone, locked alone): three for most order groups."""
    held: dict[tuple[str, str], BalanceRow] | None = session.info.get(_HELD_ROWS)
    if not held:
        return
    # Persistent rows (with a key) only: a new row is the flush's to insert.
    changed = [
        state
        for row in held.values()
        if (state := instance_state(row)).modified and state.key is not None
    ]
    if not changed:
        return
    # The session's own connection: no ORM event runs again for this statement.
    session.connection().execute(
        _UPDATE,
        [
            {
                "b_account": values["account_id"],
                "b_asset": values["asset"],
                "b_free": values["free"],
                "b_locked": values["locked"],
            }
            for values in (state.dict for state in changed)
        ],
    )
    # What the rows hold is now what the database holds: they leave the flush's work
    # (the row's only other columns are its key), which then has none for them at all.
    InstanceState._commit_all_states(
        [(state, state.dict) for state in changed], session.identity_map
    )


@event.listens_for(Session, "before_commit")
def _refuse_unapplied_moves(session: Session) -> None:
    # A move never applied would vanish with the commit: a defect, so nothing commits.
    if session.info.get(_PENDING_MOVES):
        raise RuntimeError("balance moves were not applied before the commit")


@event.listens_for(Session, "after_soft_rollback")
def _forget_held_rows(session: Session, _previous: SessionTransaction) -> None:
    # A rollback (also to a savepoint) may release locks and discard new rows.
    session.info.pop(_HELD_ROWS, None)
    session.info.pop(_PENDING_MOVES, None)
