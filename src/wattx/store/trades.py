"""Repository of trades, converting to and from :class:`wattx.domain.Trade`."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.domain import Trade
from wattx.store.bulk import insert_many
from wattx.store.models import TradeRow

_TABLE: Table = TradeRow.__table__  # type: ignore[assignment]


def trade_columns(trade: Trade, at: datetime | None) -> dict[str, Any]:
    """The columns of a new trade row (executed at ``at`` when the trade has no time), in
    the order of its table."""
    return {
        "id": trade.id,
        "seq": trade.seq,
        "epoch_id": trade.epoch_id,
        "zone": trade.zone,
        "buy_order_id": trade.buy_order_id,
        "sell_order_id": trade.sell_order_id,
        "buyer": trade.buyer,
        "seller": trade.seller,
        "buyer_zone": trade.buyer_zone,
        "seller_zone": trade.seller_zone,
        "qty_wh": trade.qty_wh,
        "delivered_wh": trade.delivered_wh,
        "price": trade.price,
        "value": trade.value,
        "buyer_fee": trade.buyer_fee,
        "seller_fee": trade.seller_fee,
        "wheeling_fee": trade.wheeling_fee,
        "executed_at": trade.executed_at or at,
    }


async def insert_trades(session: AsyncSession, columns: Sequence[dict[str, Any]]) -> None:
    """Insert new trades given by :func:`trade_columns` in one round trip (no ORM objects,
    :func:`wattx.store.bulk.insert_many`)."""
    if columns:
        names = tuple(columns[0])
        await insert_many(session, _TABLE, names, list(map(operator.itemgetter(*names), columns)))


def trade_from_row(row: TradeRow) -> Trade:
    """The domain trade a stored row holds (the inverse of :func:`trade_columns`)."""
    return Trade(
        id=row.id,
        epoch_id=row.epoch_id,
        zone=row.zone,
        buy_order_id=row.buy_order_id,
        sell_order_id=row.sell_order_id,
        buyer=row.buyer,
        seller=row.seller,
        buyer_zone=row.buyer_zone,
        seller_zone=row.seller_zone,
        qty_wh=row.qty_wh,
        delivered_wh=row.delivered_wh,
        price=row.price,
        value=row.value,
        buyer_fee=row.buyer_fee,
        seller_fee=row.seller_fee,
        wheeling_fee=row.wheeling_fee,
        seq=row.seq,
        executed_at=row.executed_at,
    )


async def max_trade_seq(session: AsyncSession) -> int:
    return int((await session.scalar(select(func.max(TradeRow.seq)))) or 0)


async def max_trade_epoch(session: AsyncSession) -> int | None:
    """The latest epoch any trade was made for, or ``None`` before the first trade."""
    found = await session.scalar(select(func.max(TradeRow.epoch_id)))
    return int(found) if found is not None else None


async def list_trades(
    session: AsyncSession,
    *,
    party: str | None,
    zone: str | None,
    epoch_id: int | None,
    limit: int,
    offset: int,
) -> list[TradeRow]:
    filters = []
    if zone is not None:
        filters.append(TradeRow.zone == zone)
    if epoch_id is not None:
        filters.append(TradeRow.epoch_id == epoch_id)
    query = select(TradeRow).where(*filters)
    if party is not None:
        # The page's trades among the party's newest as buyer and its newest as seller,
        # each read down its own (party, seq) index: `buyer = ? OR seller = ?` sorted
        # every trade the party ever made for each page.
        newest = limit + offset
        sides = [
            select(TradeRow.seq)
            .where(side == party, *filters)
            .order_by(TradeRow.seq.desc())
            .limit(newest)
            .subquery()
            for side in (TradeRow.buyer, TradeRow.seller)
        ]
        candidates = union_all(*(select(side.c.seq) for side in sides))
        query = query.where(TradeRow.seq.in_(candidates))
    query = query.order_by(TradeRow.seq.desc()).limit(limit).offset(offset)
    return list(await session.scalars(query))


async def recent_trades(session: AsyncSession, *, zone: str, limit: int) -> list[TradeRow]:
    query = select(TradeRow).where(TradeRow.zone == zone).order_by(TradeRow.seq.desc())
    return list(await session.scalars(query.limit(limit)))


async def count_epoch_trades(session: AsyncSession, epoch_id: int) -> int:
    """Every trade of the epoch: continuous ones before its gate and the auction's at it."""
    query = select(func.count()).select_from(TradeRow).where(TradeRow.epoch_id == epoch_id)
    return int((await session.scalar(query)) or 0)


async def trade_by_id(session: AsyncSession, trade_id: str) -> TradeRow | None:
    return await session.get(TradeRow, trade_id)
