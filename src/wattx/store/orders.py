"""Repository of orders, converting to and from :class:`wattx.domain.Order`.

Order rows a write transaction has created or read for update are remembered
by its session (:func:`hold_order_rows`), so a later step of the same
transaction gets them without another round trip.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import event, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from wattx.domain import Order, OrderKind, OrderStatus, Side
from wattx.store.models import OrderRow

OPEN_STATUSES = (OrderStatus.OPEN.value, OrderStatus.PARTIALLY_FILLED.value)


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


def new_order_row(order: Order, *, escrow_asset: str, escrow: int, at: datetime) -> OrderRow:
    assert order.created_at is not None
    return OrderRow(
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


def copy_fill_state(row: OrderRow, order: Order, at: datetime) -> None:
    row.seq = order.seq
    row.filled_wh = order.filled_wh
    row.cancelled_wh = order.cancelled_wh
    row.status = order.status.value
    row.updated_at = at


async def orders_for_update(
    session: AsyncSession, order_ids: Sequence[str], *, lock: bool
) -> dict[str, OrderRow]:
    held = _held_rows(session)
    found = {order_id: held[order_id] for order_id in order_ids if order_id in held}
    missing = sorted(order_id for order_id in order_ids if order_id not in held)
    if missing:
        query = select(OrderRow).where(OrderRow.id.in_(missing)).order_by(OrderRow.id)
        if lock:
            query = query.with_for_update()
        for row in await session.scalars(query):
            found[row.id] = row
            held[row.id] = row
    return found


def hold_order_rows(session: AsyncSession, rows: Iterable[OrderRow]) -> None:
    """Add new rows to the session and remember them for :func:`orders_for_update`."""
    held = _held_rows(session)
    for row in rows:
        session.add(row)
        held[row.id] = row


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
    query = select(OrderRow.owner_id, OrderRow.client_order_id).where(
        tuple_(OrderRow.owner_id, OrderRow.client_order_id).in_(wanted)
    )
    return {(owner, str(client_id)) for owner, client_id in await session.execute(query)}


async def open_orders(session: AsyncSession) -> list[Order]:
    query = select(OrderRow).where(OrderRow.status.in_(OPEN_STATUSES)).order_by(OrderRow.seq)
    return [order_from_row(row) for row in await session.scalars(query)]


async def max_order_seq(session: AsyncSession) -> int:
    return int((await session.scalar(select(func.max(OrderRow.seq)))) or 0)


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


def _held_rows(session: AsyncSession) -> dict[str, OrderRow]:
    held: dict[str, OrderRow] = session.info.setdefault(_HELD_ROWS, {})
    return held


@event.listens_for(Session, "after_soft_rollback")
def _forget_held_rows(session: Session, _previous: SessionTransaction) -> None:
    # A rollback (also to a savepoint) may release locks and discard new rows.
    session.info.pop(_HELD_ROWS, None)
