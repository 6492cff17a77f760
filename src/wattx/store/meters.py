"""Repository of registered meters."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.models import MeterRow


async def meter_by_id(
    session: AsyncSession, meter_id: str, *, lock: bool = False
) -> MeterRow | None:
    query = select(MeterRow).where(MeterRow.id == meter_id)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).first()


async def meters_by_ids(
    session: AsyncSession, meter_ids: Sequence[str], *, lock: bool = False
) -> dict[str, MeterRow]:
    """The meters of these ids that exist, in one query; ``lock`` takes their row locks in
    id order (the order every multi-meter writer locks them)."""
    query = select(MeterRow).where(MeterRow.id.in_(sorted(set(meter_ids)))).order_by(MeterRow.id)
    if lock:
        query = query.with_for_update()
    return {row.id: row for row in await session.scalars(query)}


async def meter_by_serial(session: AsyncSession, serial: str) -> MeterRow | None:
    return (await session.scalars(select(MeterRow).where(MeterRow.serial == serial))).first()


async def list_meters(
    session: AsyncSession, *, owner_id: str | None, limit: int, offset: int
) -> list[MeterRow]:
    query = select(MeterRow).order_by(MeterRow.created_at, MeterRow.id).limit(limit).offset(offset)
    if owner_id is not None:
        query = query.where(MeterRow.owner_id == owner_id)
    return list(await session.scalars(query))
