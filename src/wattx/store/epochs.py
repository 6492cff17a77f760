"""Repository of closed epochs."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.models import EpochRow, TradeRow


async def closed_epoch_ids(session: AsyncSession, since_epoch_id: int) -> set[int]:
    query = select(EpochRow.id).where(EpochRow.id >= since_epoch_id)
    return set(await session.scalars(query))


async def list_closed_epochs(session: AsyncSession, *, limit: int, offset: int) -> list[EpochRow]:
    query = select(EpochRow).order_by(EpochRow.id.desc()).limit(limit).offset(offset)
    return list(await session.scalars(query))


async def congestion_reports(session: AsyncSession, epoch_ids: Iterable[int]) -> dict[int, str]:
    """The stored congestion report (JSON) of each of ``epoch_ids`` that has one."""
    ids = list(epoch_ids)
    if not ids:
        return {}
    query = select(EpochRow.id, EpochRow.congestion).where(
        EpochRow.id.in_(ids), EpochRow.congestion.is_not(None)
    )
    rows = (await session.execute(query)).all()
    return {epoch_id: raw for epoch_id, raw in rows if raw is not None}


async def stored_trade_count(session: AsyncSession, epoch_id: int) -> int:
    """Trades stored for the epoch (those of continuous trading, before its gate closes)."""
    query = select(func.count()).select_from(TradeRow).where(TradeRow.epoch_id == epoch_id)
    return int(await session.scalar(query) or 0)


async def unclosed_epochs_with_trades(session: AsyncSession) -> set[int]:
    """Epochs with trades and no closure row (their orders filled before the gate).

    An epoch's batch enters the settlement outbox only once it is closed, so the trades of
    an unclosed epoch have no ``settlement_status``: they are found among the trades of the
    partial index ``ix_trades_unsettled`` (the epochs still to settle), not among every
    trade ever made, at a start and whenever a replica becomes the market writer."""
    closed = select(EpochRow.id).where(EpochRow.id == TradeRow.epoch_id).exists()
    query = select(TradeRow.epoch_id).where(TradeRow.settlement_status.is_(None), ~closed)
    return set(await session.scalars(query.distinct()))
