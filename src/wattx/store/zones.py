"""Repository of zones, their tariffs and the operator's zone-rate overrides."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.models import ZoneRateOverrideRow, ZoneRow


async def all_zones(session: AsyncSession) -> list[ZoneRow]:
    return list(await session.scalars(select(ZoneRow).order_by(ZoneRow.id)))


async def zone_by_id(session: AsyncSession, zone_id: str, *, lock: bool = False) -> ZoneRow | None:
    query = select(ZoneRow).where(ZoneRow.id == zone_id)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).first()


async def all_rate_overrides(session: AsyncSession) -> list[ZoneRateOverrideRow]:
    query = select(ZoneRateOverrideRow).order_by(
        ZoneRateOverrideRow.seller_zone, ZoneRateOverrideRow.buyer_zone
    )
    return list(await session.scalars(query))


async def rate_override(
    session: AsyncSession, seller_zone: str, buyer_zone: str
) -> ZoneRateOverrideRow | None:
    return await session.get(ZoneRateOverrideRow, (seller_zone, buyer_zone))
