"""The figures the reference price is fed from: the batteries' stored energy per zone
(device telemetry) and the suppliers' delivered/contracted history (measured deliveries,
summed per seller and zone as they are measured)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.models import MeterRow
from wattx.store.models_devices import DeviceRow, SellerDeliveryTotalRow
from wattx.store.upsert import adding_upsert


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
    every trade sold from ``zone``: how many, Wh delivered and Wh contracted.

    Read from the running totals (a row per seller and zone), not from the deliveries:
    the same figures, at a cost that does not grow with the history.
    """
    query = select(
        func.coalesce(func.sum(SellerDeliveryTotalRow.deliveries), 0),
        func.coalesce(func.sum(SellerDeliveryTotalRow.delivered_wh), 0),
        func.coalesce(func.sum(SellerDeliveryTotalRow.contracted_wh), 0),
    )
    if sellers is not None:
        query = query.where(SellerDeliveryTotalRow.seller.in_(sorted(sellers)))
    if zone is not None:
        query = query.where(SellerDeliveryTotalRow.zone == zone)
    count, delivered, contracted = (await session.execute(query)).one()
    return DeliveryRecord(int(count or 0), int(delivered or 0), int(contracted or 0))


async def add_measured_deliveries(
    session: AsyncSession, added: Mapping[tuple[str, str], DeliveryRecord]
) -> None:
    """Add to the running totals of each (seller, seller's zone): deliveries newly
    measured, Wh delivered and Wh contracted (inside the transaction that measures them).

    One statement for all of them, each row an increment that concurrent writers cannot
    lose, taken in key order (as the balances are) so that two writers never deadlock.
    """
    if not added:
        return
    table: Table = SellerDeliveryTotalRow.__table__  # type: ignore[assignment]
    await session.execute(
        adding_upsert(
            session, table, ("seller", "zone"), ("deliveries", "delivered_wh", "contracted_wh")
        ),
        [
            {
                "seller": seller,
                "zone": zone,
                "deliveries": record.trades,
                "delivered_wh": record.delivered_wh,
                "contracted_wh": record.contracted_wh,
            }
            for (seller, zone), record in sorted(added.items())
        ],
    )
