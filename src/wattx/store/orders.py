"""Repository of orders, converting to and from :class:`wattx.domain.Order`.

Order rows a write transaction has created or read for update are remembered
by its session (:func:`hold_order_rows`), so a later step of the same
transaction gets them without another round trip.

A new order is a plain :class:`NewOrderRow`, not an ORM object: the writer
creates up to a thousand per transaction, and an ORM instance costs its
construction, its state tracking and its share of the unit of work. They are
written with one multi-row ``INSERT`` (and, for those a later step of the same
transaction changed after that, one ``UPDATE`` each) before the session runs
any ORM statement while it autoflushes, before it flushes and before it commits:
every query of the transaction that could see them sees them, and the commit
includes them. (A read of older rows to lock them, :func:`orders_for_update`,
does not autoflush: the new rows wait for the next write.) A writer that knows
when it is done creating them calls :func:`write_new_rows`, which on PostgreSQL
sends the new ones with ``COPY`` instead (:mod:`wattx.store.copy`), and hands
them over to the database: from then on the transaction reads them again (for
update, as ORM rows) like any stored order, and its statements no longer look
for changes to them. A handed-over row changed all the same refuses the commit
(a defect: the change would be lost).
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Table, bindparam, event, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, UOWTransaction

from wattx.domain import Order, OrderKind, OrderStatus, Side
from wattx.store.bulk import driver_insert
from wattx.store.copy import copies, copy_records
from wattx.store.dialect import IDS_PG, IDS_SQLITE, ids_parameter, is_postgres
from wattx.store.models import OrderRow
from wattx.store.pairs import pair_filters

OPEN_STATUSES = (OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value)


@dataclasses.dataclass(slots=True, eq=False)
class NewOrderRow:
    """An order this transaction creates: the columns of :class:`OrderRow`, written by
    :func:`_write_new_rows` (not tracked by the ORM)."""

    id: str
    owner_id: str
    side: str
    kind: str
    zone: str
    epoch_id: int
    qty_wh: int
    limit_price: int
    client_order_id: str | None
    created_at: datetime
    updated_at: datetime
    seq: int
    filled_wh: int
    cancelled_wh: int
    status: str
    escrow_asset: str
    escrow_remaining: int
    # What the database holds, once written: the columns an order's life changes
    # (:data:`_changing`).
    written: tuple[object, ...] | None = None


_COLUMNS = tuple(f.name for f in dataclasses.fields(NewOrderRow) if f.name != "written")
_record = operator.attrgetter(*_COLUMNS)
"""A new row's values in :data:`_COLUMNS` order, as ``COPY`` takes them."""


def _changing(row: NewOrderRow) -> tuple[object, ...]:
    """The columns of a row that an order's life changes (``NewOrderRow.written``)."""
    return (
        row.seq,
        row.filled_wh,
        row.cancelled_wh,
        row.status,
        row.updated_at,
        row.escrow_remaining,
    )


@dataclasses.dataclass(slots=True)
class _NewRows:
    """A transaction's new rows, in the order it created them; the first ``written`` of
    them are in the database (rows are written in that order, all unwritten ones at once).

    The session asks before each of its statements which rows are unwritten (a slice) or
    changed since they were written (a comparison per written row)."""

    rows: list[NewOrderRow] = dataclasses.field(default_factory=list)
    written: int = 0
    # Written and handed over to the database (:func:`write_new_rows`): never to change.
    released: list[NewOrderRow] = dataclasses.field(default_factory=list)

    def unwritten(self) -> list[NewOrderRow]:
        return self.rows[self.written :]

    def changed(self) -> list[NewOrderRow]:
        """The written rows whose changing columns differ from what was written."""
        return _changed(self.rows[: self.written])

    def release(self) -> None:
        """Every row is written: hand them over (see the module's docstring)."""
        self.released += self.rows
        self.rows = []
        self.written = 0

    def mark_written(self, rows: Iterable[NewOrderRow]) -> None:
        """``rows`` (this transaction's unwritten ones, or changed ones) are written now."""
        for row in rows:
            row.written = _changing(row)
        self.written = len(self.rows)


def _changed(rows: list[NewOrderRow]) -> list[NewOrderRow]:
    # _changing(row), inlined: the call was most of the cost for a thousand rows.
    return [
        row
        for row in rows
        if row.written
        != (
            row.seq,
            row.filled_wh,
            row.cancelled_wh,
            row.status,
            row.updated_at,
            row.escrow_remaining,
        )
    ]


OrderRecord = OrderRow | NewOrderRow
"""An order row a write transaction holds: read from the database or created by it."""


def order_from_row(row: OrderRow) -> Order:
    return Order(
        id=row.id,
        owner=row.owner_id,
        side=Side(row.side),
        qty_wh=row.qty_wh,
        limit_price=row.limit_price,
        zone=row.zone,
        epoch_id=row.epoch_id,
        kind=OrderKind(row.kind),
        client_order_id=row.client_order_id,
        created_at=row.created_at,
        seq=row.seq,
        filled_wh=row.filled_wh,
        cancelled_wh=row.cancelled_wh,
        status=OrderStatus(row.status),
    )


def new_order_row(order: Order, *, escrow_asset: str, escrow: int, at: datetime) -> NewOrderRow:
    assert order.created_at is not None
    return NewOrderRow(
        id=order.id,
        owner_id=order.owner,
        side=order.side.value,
        kind=order.kind.value,
        zone=order.zone,
        epoch_id=order.epoch_id,
        qty_wh=order.qty_wh,
        limit_price=order.limit_price,
        client_order_id=order.client_order_id,
        created_at=order.created_at,
        updated_at=at,
        seq=order.seq,
        filled_wh=order.filled_wh,
        cancelled_wh=order.cancelled_wh,
        status=order.status.value,
        escrow_asset=escrow_asset,
        escrow_remaining=escrow,
    )


def copy_fill_state(row: OrderRecord, order: Order, at: datetime) -> None:
    row.seq = order.seq
    row.filled_wh = order.filled_wh
    row.cancelled_wh = order.cancelled_wh
    row.status = order.status.value
    row.updated_at = at


# Built once, as every group of orders reads the resting orders its trades touched: the
# ids as one parameter (wattx.store.dialect.IDS_PG).
_SELECT_ORDERS_PG = select(OrderRow).where(OrderRow.id == IDS_PG).order_by(OrderRow.id)
_LOCK_ORDERS_PG = _SELECT_ORDERS_PG.with_for_update()
_SELECT_ORDERS_SQLITE = select(OrderRow).where(OrderRow.id.in_(IDS_SQLITE)).order_by(OrderRow.id)


async def orders_for_update(
    session: AsyncSession, order_ids: Sequence[str], *, lock: bool
) -> dict[str, OrderRecord]:
    held = _held_rows(session)
    found = {order_id: held[order_id] for order_id in order_ids if order_id in held}
    missing = sorted(order_id for order_id in order_ids if order_id not in held)
    if missing:
        if is_postgres(session):
            query = _LOCK_ORDERS_PG if lock else _SELECT_ORDERS_PG
        else:
            query = _SELECT_ORDERS_SQLITE  # no row locks: the transaction holds the database's
        parameters = ids_parameter(session, missing)
        # Rows not held are older than this transaction: what it changed so far can
        # wait for the commit's flush instead of a flush of its own here.
        with session.no_autoflush:
            for row in await session.scalars(query, parameters):
                found[row.id] = row
                held[row.id] = row
    return found


def held_order_row(session: AsyncSession, order_id: str) -> OrderRecord | None:
    """The row, when this transaction has created it or read it for update (no round trip)."""
    return _held_rows(session).get(order_id)


def hold_order_rows(session: AsyncSession, rows: Iterable[NewOrderRow]) -> None:
    """Remember new rows for :func:`orders_for_update` and write them before the session's
    next statement, flush or commit."""
    held = _held_rows(session)
    pending = _new_rows(session).rows
    for row in rows:
        held[row.id] = row
        pending.append(row)


async def order_by_id(session: AsyncSession, order_id: str) -> OrderRow | None:
    return await session.get(OrderRow, order_id)


async def order_by_client_id(
    session: AsyncSession, owner_id: str, client_order_id: str
) -> OrderRow | None:
    query = select(OrderRow).where(
        OrderRow.owner_id == owner_id, OrderRow.client_order_id == client_order_id
    )
    return (await session.scalars(query)).first()


async def used_client_ids(
    session: AsyncSession, pairs: Iterable[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which of these ``(owner_id, client_order_id)`` pairs an order already carries (one query)."""
    wanted = sorted(set(pairs))
    if not wanted:
        return set()
    used: set[tuple[str, str]] = set()
    for where in pair_filters(OrderRow.owner_id, OrderRow.client_order_id, wanted):
        query = select(OrderRow.owner_id, OrderRow.client_order_id).where(where)
        used.update((owner, str(client_id)) for owner, client_id in await session.execute(query))
    return used


async def open_orders(session: AsyncSession) -> list[Order]:
    query = select(OrderRow).where(OrderRow.status.in_(OPEN_STATUSES)).order_by(OrderRow.seq)
    return [order_from_row(row) for row in await session.scalars(query)]


async def list_orders(
    session: AsyncSession,
    *,
    owner_id: str | None,
    zone: str | None,
    epoch_id: int | None,
    status: str | None,
    side: str | None,
    limit: int,
    offset: int,
) -> list[OrderRow]:
    query = select(OrderRow)
    if owner_id is not None:
        query = query.where(OrderRow.owner_id == owner_id)
    if zone is not None:
        query = query.where(OrderRow.zone == zone)
    if epoch_id is not None:
        query = query.where(OrderRow.epoch_id == epoch_id)
    if status is not None:
        query = query.where(OrderRow.status == status)
    if side is not None:
        query = query.where(OrderRow.side == side)
    query = query.order_by(OrderRow.created_at.desc(), OrderRow.id.desc())
    return list(await session.scalars(query.limit(limit).offset(offset)))


_HELD_ROWS = "wattx.orders.held"
_NEW_ROWS = "wattx.orders.new"


def _held_rows(session: AsyncSession) -> dict[str, OrderRecord]:
    held: dict[str, OrderRecord] = session.info.setdefault(_HELD_ROWS, {})
    return held


def _new_rows(session: AsyncSession | Session) -> _NewRows:
    rows: _NewRows | None = session.info.get(_NEW_ROWS)
    if rows is None:
        rows = session.info[_NEW_ROWS] = _NewRows()
    return rows


_TABLE: Table = OrderRow.__table__  # type: ignore[assignment]
_UPDATE = (
    update(OrderRow.__table__)  # type: ignore[arg-type]
    .where(OrderRow.__table__.c.id == bindparam("b_id"))
    .values(
        seq=bindparam("b_seq"),
        filled_wh=bindparam("b_filled_wh"),
        cancelled_wh=bindparam("b_cancelled_wh"),
        status=bindparam("b_status"),
        updated_at=bindparam("b_updated_at"),
        escrow_remaining=bindparam("b_escrow_remaining"),
    )
)


async def write_new_rows(session: AsyncSession) -> None:
    """Write the new rows now (as the session would before its next statement): on
    PostgreSQL those not yet written in one ``COPY``, the rest as one statement each;
    then hand them over to the database.

    The caller is done with them: a later step of the transaction that needs one reads
    it again (:func:`orders_for_update`), and a change to a row handed over refuses the
    commit. Before, each of the transaction's last statements compared every new row
    with what was written of it."""
    new_rows: _NewRows | None = session.info.get(_NEW_ROWS)
    if new_rows is None:
        return
    if copies(session):
        fresh = new_rows.unwritten()
        if fresh:
            await copy_records(
                session, OrderRow.__tablename__, _COLUMNS, [_record(row) for row in fresh]
            )
            new_rows.mark_written(fresh)
    await session.run_sync(_write_new_rows)
    held = _held_rows(session)
    for row in new_rows.rows:
        held.pop(row.id, None)
    new_rows.release()


def _write_new_rows(session: Session) -> None:
    """Insert the new rows not yet written and update those changed since they were."""
    new_rows: _NewRows | None = session.info.get(_NEW_ROWS)
    if new_rows is None:
        return
    fresh = new_rows.unwritten()
    changed = new_rows.changed()
    if not fresh and not changed:
        return
    # The session's own connection, so no ORM event runs again for these statements.
    connection = session.connection()
    if fresh:
        _insert(connection, fresh)
    if changed:
        connection.execute(
            _UPDATE,
            [
                {
                    "b_id": row.id,
                    "b_seq": row.seq,
                    "b_filled_wh": row.filled_wh,
                    "b_cancelled_wh": row.cancelled_wh,
                    "b_status": row.status,
                    "b_updated_at": row.updated_at,
                    "b_escrow_remaining": row.escrow_remaining,
                }
                for row in changed
            ],
        )
    new_rows.mark_written(fresh + changed)


def _insert(connection: Connection, rows: list[NewOrderRow]) -> None:
    """One ``INSERT`` of many rows, through the driver (:func:`wattx.store.bulk.driver_insert`:
    SQLAlchemy's parameters built row by row, and every row's two times formatted anew,
    were a tenth of a batch of a thousand on SQLite)."""
    driver_insert(connection, _TABLE, _COLUMNS, [_record(row) for row in rows])


@event.listens_for(Session, "do_orm_execute")
def _write_before_statement(state: ORMExecuteState) -> None:
    # As an ORM object's change would be flushed before a statement of an autoflushing
    # session: a statement under ``no_autoflush`` (reading older rows to lock) leaves
    # them for the next write, on PostgreSQL the ``COPY`` of write_new_rows.
    if state.session.autoflush:
        _write_new_rows(state.session)


@event.listens_for(Session, "before_flush")
def _write_before_flush(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    _write_new_rows(session)


@event.listens_for(Session, "before_commit")
def _write_before_commit(session: Session) -> None:
    _write_new_rows(session)
    new_rows: _NewRows | None = session.info.get(_NEW_ROWS)
    if new_rows is not None and _changed(new_rows.released):
        # The change would vanish with the commit: a defect, so nothing commits.
        raise RuntimeError("a new order row changed after it was handed over to the database")


@event.listens_for(Session, "after_soft_rollback")
def _forget_held_rows(session: Session, _previous: SessionTransaction) -> None:
    # A rollback (also to a savepoint) may release locks and discard new rows.
    session.info.pop(_HELD_ROWS, None)
    session.info.pop(_NEW_ROWS, None)
