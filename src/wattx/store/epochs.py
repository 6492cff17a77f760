"""Repository of closed epochs."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.models import EpochRow


async def closed_epoch_ids(session: AsyncSession, since_epoch_id: int) -> set[int]:
    query = select(EpochRow.id).where(EpochRow.id >= since_epoch_id)
    return set(await session.scalars(query))


async def list_closed_epochs(session: AsyncSession, *, limit: int, offset: int) -> list[EpochRow]:
    query = select(EpochRow).order_by(EpochRow.id.desc()).limit(limit).offset(offset)
    return list(await session.scalars(query))
