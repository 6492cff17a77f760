"""The figures the reference price is fed from: the batteries' stored energy per zone
(device telemetry) and the suppliers' delivered/contracted history (measured deliveries)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.models import MeterRow, TradeRow
from wattx.store.models_devices import DeviceRow, TradeDeliveryRow


@dataclass(frozen=True, slots=True)
class Storage:
    batteries: int
    stored_wh: int
    capacity_wh: int


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    trades: int
    delivered_wh: int
    contracted_wh: int


async def zone_storage(session: AsyncSession, zone: str) -> Storage:
    """The zone's active batteries that report a state of charge: how many, their stored
    energy and their capacity (a battery sits in the zone of its meter)."""
    query = (
        select(
            func.count(DeviceRow.id),
            func.coalesce(func.sum(DeviceRow.soc_wh), 0),
            func.coalesce(func.sum(DeviceRow.capacity_wh), 0),
        )
        .join(MeterRow, MeterRow.id == DeviceRow.meter_id)
        .where(
            MeterRow.zone_id == zone,
            DeviceRow.kind == "battery",
            DeviceRow.status != "removed",
            DeviceRow.soc_wh.is_not(None),
            DeviceRow.capacity_wh > 0,
        )
    )
    count, stored, capacity = (await session.execute(query)).one()
    return Storage(int(count or 0), int(stored or 0), int(capacity or 0))


async def delivery_record(
    session: AsyncSession, *, sellers: Collection[str] | None = None, zone: str | None = None
) -> DeliveryRecord:
    """Measured deliveries (``delivered_wh`` known) of the trades ``sellers`` sold, or of
    every trade sold from ``zone``: how many, Wh delivered and Wh contracted."""
    query = (
        select(
            func.count(TradeDeliveryRow.trade_id),
            func.coalesce(func.sum(TradeDeliveryRow.delivered_wh), 0),
            func.coalesce(func.sum(TradeDeliveryRow.contracted_wh), 0),
        )
        .join(TradeRow, TradeRow.id == TradeDeliveryRow.trade_id)
        .where(TradeDeliveryRow.delivered_wh.is_not(None))
    )
    if sellers is not None:
        query = query.where(TradeRow.seller.in_(sorted(sellers)))
    if zone is not None:
        query = query.where(TradeRow.seller_zone == zone)
    count, delivered, contracted = (await session.execute(query)).one()
    return DeliveryRecord(int(count or 0), int(delivered or 0), int(contracted or 0))
