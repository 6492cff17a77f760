"""Repository of zones and their tariffs."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.models import ZoneRow


async def all_zones(session: AsyncSession) -> list[ZoneRow]:
    return list(await session.scalars(select(ZoneRow).order_by(ZoneRow.id)))


async def zone_by_id(session: AsyncSession, zone_id: str, *, lock: bool = False) -> ZoneRow | None:
    query = select(ZoneRow).where(ZoneRow.id == zone_id)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).first()
