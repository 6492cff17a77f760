"""Each seller's measured deliveries, summed per zone as they are measured
(``seller_delivery_totals``): the reference price's reliability reads those rows, never
the deliveries themselves, and they always agree with the deliveries (SQLite and
PostgreSQL; migration ``0027`` fills them from the deliveries measured before it)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from chain_service.flow import record_export
from service.client import ApiClient
from service.conftest import ManualClock
from support.migrations import upgrade_to
from support.sqlite_plans import recorded
from wattx.devices.allocation import DeliveryOutcome
from wattx.store import settlement as settlement_repo
from wattx.store import upgrade_to_head
from wattx.store.db import Database
from wattx.store.models import TradeRow
from wattx.store.models_devices import TradeDeliveryRow
from wattx.store.reference_inputs import (
    DeliveryRecord,
    add_measured_deliveries,
    delivery_record,
)
from wattx.store.trades import trade_from_row

from .test_measured_settlement import _physical_epoch, _settle_after_grace


async def _summed_from_deliveries(
    session: AsyncSession, *, seller: str | None = None, zone: str | None = None
) -> DeliveryRecord:
    """The figures as the deliveries give them (the reference price's read before 0027)."""
    query = (
        select(
            func.count(TradeDeliveryRow.trade_id),
            func.coalesce(func.sum(TradeDeliveryRow.delivered_wh), 0),
            func.coalesce(func.sum(TradeDeliveryRow.contracted_wh), 0),
        )
        .join(TradeRow, TradeRow.id == TradeDeliveryRow.trade_id)
        .where(TradeDeliveryRow.delivered_wh.is_not(None))
    )
    if seller is not None:
        query = query.where(TradeRow.seller == seller)
    if zone is not None:
        query = query.where(TradeRow.seller_zone == zone)
    count, delivered, contracted = (await session.execute(query)).one()
    return DeliveryRecord(int(count), int(delivered), int(contracted))


async def test_the_totals_agree_with_the_measured_deliveries_and_are_what_is_read(
    api: ApiClient, clock: ManualClock
) -> None:
    setup = await _physical_epoch(api, clock)
    seller = setup.market.seller.id
    async with api.state.db.read() as session:
        assert await delivery_record(session, sellers={seller}) == DeliveryRecord(0, 0, 0)
    # The battery stopped after 750 of the 1,500 Wh sold (two trades).
    await record_export(api.state, setup.market.meter_id, {setup.epoch_id: (0, 750)})
    await record_export(api.state, setup.buyer_meter, {setup.epoch_id: (1_500, 0)})
    await _settle_after_grace(api, clock, setup)

    engines = {api.state.db.read_engine, api.state.db.write_engine}
    async with api.state.db.read() as session:
        expected = await _summed_from_deliveries(session, seller=seller)
        contracted = sum(t["delivered_wh"] for t in setup.trades)  # after the zone's loss
        assert expected.trades == len(setup.trades)
        assert 0 < expected.delivered_wh < expected.contracted_wh == contracted
        with recorded(engines, lambda statement: "trade_deliveries" in statement) as reads:
            by_seller = await delivery_record(session, sellers={seller, "nobody"})
            by_zone = await delivery_record(session, zone="main")
            elsewhere = await delivery_record(session, zone="elsewhere")
        assert by_seller == by_zone == expected
        assert elsewhere == DeliveryRecord(0, 0, 0)
        assert reads == []  # the running totals only, whatever the history

    # A delivery measured again adds only its change: no second count, no second contract.
    # (A settled one refuses it; a refunded one keeps its state and takes the new figures.)
    async with api.state.db.read() as session:
        rows = await settlement_repo.epoch_trades(session, setup.epoch_id)
    trade = trade_from_row(rows[0])
    async with api.state.db.read() as session:
        measured = await session.get(TradeDeliveryRow, trade.id)
        assert measured is not None
        assert measured.delivered_wh is not None
        before = measured.delivered_wh
    again = DeliveryOutcome(
        trade_id=trade.id,
        contracted_wh=measured.contracted_wh,
        delivered_wh=before + 100,
        refund=0,
        imbalance_charge=0,
        seller_export_wh=before + 100,
        buyer_import_wh=before + 100,
    )
    async with api.state.db.write() as session:
        measured = await session.get(TradeDeliveryRow, trade.id)
        assert measured is not None
        measured.state = "refunded"
    async with api.state.db.write() as session:
        await api.state.delivery.record(session, setup.epoch_id, [trade], {trade.id: again})
    async with api.state.db.read() as session:
        assert await delivery_record(session, sellers={seller}) == replace(
            expected, delivered_wh=expected.delivered_wh + 100
        )
        assert await _summed_from_deliveries(session, seller=seller) == replace(
            expected, delivered_wh=expected.delivered_wh + 100
        )


async def test_additions_accumulate_per_seller_and_zone(database_url: str) -> None:
    db = Database(database_url)
    try:
        await upgrade_to_head(db)
        async with db.write() as session:
            await add_measured_deliveries(
                session,
                {
                    ("s2", "north"): DeliveryRecord(1, 800, 800),
                    ("s1", "north"): DeliveryRecord(2, 1_200, 1_500),
                },
            )
            await add_measured_deliveries(session, {})
        async with db.write() as session:
            await add_measured_deliveries(
                session,
                {
                    ("s1", "north"): DeliveryRecord(1, 100, 400),
                    ("s1", "south"): DeliveryRecord(1, 0, 300),
                },
            )
        async with db.read() as session:
            assert await delivery_record(session, sellers={"s1"}) == DeliveryRecord(4, 1_300, 2_200)
            assert await delivery_record(session, zone="north") == DeliveryRecord(4, 2_100, 2_700)
            assert await delivery_record(session, sellers={"s2"}, zone="south") == DeliveryRecord(
                0, 0, 0
            )
    finally:
        await db.dispose()


# (trade, seller, seller's zone, contracted Wh, delivered Wh or None: not measured yet)
HISTORY = [
    ("t1", "s1", "north", 1_000, 1_000),
    ("t2", "s1", "north", 500, 200),
    ("t3", "s1", "south", 300, 0),
    ("t4", "s2", "north", 800, 800),
    ("t5", "s2", "north", 700, None),
]


async def test_the_migration_sums_the_deliveries_measured_before_it(empty_url: str) -> None:
    db = Database(empty_url)
    at = datetime(2026, 6, 1, 8, tzinfo=UTC)
    try:
        async with db.write_engine.begin() as conn:
            await conn.run_sync(upgrade_to("0026"))
            for seq, (trade_id, seller, zone, contracted, delivered) in enumerate(HISTORY):
                await conn.execute(
                    text(
                        "INSERT INTO trades (id, seq, epoch_id, zone, buy_order_id,"
                        " sell_order_id, buyer, seller, buyer_zone, seller_zone, qty_wh,"
                        " delivered_wh, price, value, buyer_fee, seller_fee, wheeling_fee,"
                        " executed_at) VALUES (:id, :seq, 1, :zone, 'b', 's', 'buyer',"
                        " :seller, :zone, :zone, :qty, :qty, 1, 1, 0, 0, 0, :at)"
                    ),
                    {
                        "id": trade_id,
                        "seq": seq,
                        "zone": zone,
                        "seller": seller,
                        "qty": contracted,
                        "at": at.replace(tzinfo=None) if db.is_sqlite else at,
                    },
                )
                await conn.execute(
                    text(
                        "INSERT INTO trade_deliveries (trade_id, epoch_id, state,"
                        " contracted_wh, delivered_wh, updated_at)"
                        " VALUES (:id, 1, 'open', :contracted, :delivered, :at)"
                    ),
                    {
                        "id": trade_id,
                        "contracted": contracted,
                        "delivered": delivered,
                        "at": at.replace(tzinfo=None) if db.is_sqlite else at,
                    },
                )
        async with db.write_engine.begin() as conn:
            await conn.run_sync(upgrade_to("head"))
            totals = sorted(
                tuple(row)
                for row in await conn.execute(
                    text(
                        "SELECT seller, zone, deliveries, delivered_wh, contracted_wh"
                        " FROM seller_delivery_totals"
                    )
                )
            )
        assert totals == [
            ("s1", "north", 2, 1_200, 1_500),
            ("s1", "south", 1, 0, 300),
            ("s2", "north", 1, 800, 800),
        ]
        async with db.read() as session:
            assert await delivery_record(session, zone="north") == DeliveryRecord(3, 2_000, 2_300)
            assert await delivery_record(session, sellers={"s1"}) == DeliveryRecord(3, 1_200, 1_800)
    finally:
        await db.dispose()
