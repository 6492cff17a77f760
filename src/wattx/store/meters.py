"""Repository of registered meters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.dialect import IDS_PG, IDS_SQLITE, ids_parameter, is_postgres
from wattx.store.models import MeterRow


class MeterRecord(NamedTuple):
    """The columns of a meter that the readings writer judges its batches by."""

    id: str
    owner_id: str
    zone_id: str
    status: str
    rated_capacity_w: int
    public_key: str


async def meter_by_id(
    session: AsyncSession, meter_id: str, *, lock: bool = False
) -> MeterRow | None:
    query = select(MeterRow).where(MeterRow.id == meter_id)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).first()


# Built once, the ids as one parameter (wattx.store.dialect.IDS_PG).
_METER_COLUMNS = select(*(MeterRow.__table__.c[name] for name in MeterRecord._fields))
_SELECT_METERS_PG = _METER_COLUMNS.where(MeterRow.id == IDS_PG).order_by(MeterRow.id)
_LOCK_METERS_PG = _SELECT_METERS_PG.with_for_update()
_SELECT_METERS_SQLITE = _METER_COLUMNS.where(MeterRow.id.in_(IDS_SQLITE)).order_by(MeterRow.id)


async def meters_by_ids(
    session: AsyncSession, meter_ids: Sequence[str], *, lock: bool = False
) -> dict[str, MeterRecord]:
    """The meters of these ids that exist, in one query; ``lock`` takes their row locks in
    id order (the order every multi-meter writer locks them). Plain records, not ORM
    objects: every group of posted readings reads its meters here."""
    if is_postgres(session):
        query = _LOCK_METERS_PG if lock else _SELECT_METERS_PG
    else:
        query = _SELECT_METERS_SQLITE  # no row locks: the transaction holds the database's
    parameters = ids_parameter(session, sorted(set(meter_ids)))
    return {row.id: MeterRecord._make(row) for row in await session.execute(query, parameters)}


async def meter_by_serial(session: AsyncSession, serial: str) -> MeterRow | None:
    return (await session.scalars(select(MeterRow).where(MeterRow.serial == serial))).first()


async def list_meters(
    session: AsyncSession, *, owner_id: str | None, limit: int, offset: int
) -> list[MeterRow]:
    query = select(MeterRow).order_by(MeterRow.created_at, MeterRow.id).limit(limit).offset(offset)
    if owner_id is not None:
        query = query.where(MeterRow.owner_id == owner_id)
    return list(await session.scalars(query))
