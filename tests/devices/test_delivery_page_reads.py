"""A participant's deliveries, page by page, are read down the deliveries' own indexes of
each party in trade order (``buyer``, ``seller`` and ``trade_seq``, kept from the trade),
never through every trade ever made: the same pages as `buyer = ? OR seller = ?` over the
trades, and on SQLite no scan of the trades. Migration ``0033`` fills the parties and
order of the deliveries recorded before it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from support.migrations import upgrade_to
from support.seeded import seeded_database, trade_row
from support.sqlite_plans import query_plans, recorded
from wattx.services.measurement.delivery import DeliveryService
from wattx.services.principal import Principal, Role, UserStatus
from wattx.store.db import Database
from wattx.store.models import TradeRow
from wattx.store.models_devices import TradeDeliveryRow

AT = datetime(2026, 6, 1, 8, tzinfo=UTC)
PARTIES = ("ann", "bob", "cy", "dee")


def _trade(seq: int) -> dict[str, object]:
    return trade_row(
        seq,
        id=f"t{seq:03}",
        epoch_id=seq // 6,
        buyer=PARTIES[seq % 4],
        seller=PARTIES[(seq // 4 + 1 + seq) % 4],
    )


def _history() -> dict[object, list[dict[str, object]]]:
    """120 trades stored out of order; two in three physical, in states that vary."""
    trades = [_trade(seq) for seq in (*range(60, 120), *range(60))]
    deliveries = [
        {
            "trade_id": t["id"],
            "epoch_id": t["epoch_id"],
            "buyer": t["buyer"],
            "seller": t["seller"],
            "trade_seq": t["seq"],
            "state": ("open", "delivered", "refunded")[int(str(t["seq"])) % 3],
            "contracted_wh": 10,
            "updated_at": AT,
        }
        for t in trades
        if int(str(t["seq"])) % 3 != 2 or t["seller"] == "dee"
    ]
    return {TradeRow: trades, TradeDeliveryRow: deliveries}


def _service(db: Database) -> DeliveryService:
    service = DeliveryService.__new__(DeliveryService)
    service._db = db  # the reads need nothing else
    return service


def _principal(user_id: str) -> Principal:
    return Principal(user_id, Role.PROSUMER, UserStatus.ADMITTED, "session")


async def _or_over_the_trades(
    session: AsyncSession,
    party: str,
    *,
    newest_first: bool,
    limit: int,
    offset: int,
    **where: object,
) -> list[str]:
    """The page as it was read before the deliveries kept their parties."""
    query = (
        select(TradeDeliveryRow.trade_id)
        .join(TradeRow, TradeRow.id == TradeDeliveryRow.trade_id)
        .where((TradeRow.buyer == party) | (TradeRow.seller == party))
        .where(*(getattr(TradeDeliveryRow, name) == value for name, value in where.items()))
    )
    order = TradeRow.seq.desc() if newest_first else TradeRow.seq
    return list(await session.scalars(query.order_by(order).limit(limit).offset(offset)))


async def test_pages_are_those_of_the_parties_trades(database_url: str) -> None:
    async with seeded_database(database_url, _history(), migrate=True) as db:
        service = _service(db)
        for party in (*PARTIES, "nobody"):
            for newest_first in (True, False):
                for limit, offset in ((200, 0), (7, 0), (7, 5), (10, 60)):
                    for where in ({}, {"state": "open"}, {"epoch_id": 4}):
                        pairs = await service.deliveries(
                            _principal(party),
                            epoch_id=where.get("epoch_id"),  # type: ignore[arg-type]
                            state=where.get("state"),  # type: ignore[arg-type]
                            limit=limit,
                            offset=offset,
                            newest_first=newest_first,
                        )
                        async with db.read() as session:
                            expected = await _or_over_the_trades(
                                session,
                                party,
                                newest_first=newest_first,
                                limit=limit,
                                offset=offset,
                                **where,
                            )
                        assert [d.trade_id for d, _ in pairs] == expected
                        assert all(t.id == d.trade_id for d, t in pairs)


async def test_on_sqlite_a_page_reads_the_parties_indexes(tmp_path: Path) -> None:
    path = tmp_path / "deliveries.sqlite3"
    async with seeded_database(f"sqlite+aiosqlite:///{path}", _history(), migrate=True) as db:
        with recorded([db.read_engine]) as reads:
            await _service(db).deliveries(
                _principal("ann"), epoch_id=None, limit=200, offset=0, newest_first=True
            )
    (plan,) = query_plans(path, reads)
    assert not [step for step in plan if step.startswith("SCAN trades")], plan
    for index in ("ix_trade_deliveries_buyer_seq", "ix_trade_deliveries_seller_seq"):
        assert any(index in step for step in plan), plan


async def test_the_migration_fills_the_deliveries_parties_and_order(empty_url: str) -> None:
    db = Database(empty_url)
    at = AT.replace(tzinfo=None) if empty_url.startswith("sqlite") else AT
    try:
        async with db.write_engine.begin() as conn:
            await conn.run_sync(upgrade_to("0032"))
            for seq in (3, 8):
                trade = {**_trade(seq), "executed_at": at}
                await conn.execute(
                    text(
                        "INSERT INTO trades (id, seq, epoch_id, zone, buy_order_id,"
                        " sell_order_id, buyer, seller, buyer_zone, seller_zone, qty_wh,"
                        " delivered_wh, price, value, buyer_fee, seller_fee, wheeling_fee,"
                        " executed_at) VALUES (:id, :seq, :epoch_id, :zone, :buy_order_id,"
                        " :sell_order_id, :buyer, :seller, :buyer_zone, :seller_zone, :qty_wh,"
                        " :delivered_wh, :price, :value, :buyer_fee, :seller_fee,"
                        " :wheeling_fee, :executed_at)"
                    ),
                    trade,
                )
                await conn.execute(
                    text(
                        "INSERT INTO trade_deliveries (trade_id, epoch_id, state,"
                        " contracted_wh, updated_at) VALUES (:id, :epoch_id, 'open', 10, :at)"
                    ),
                    {"id": trade["id"], "epoch_id": trade["epoch_id"], "at": at},
                )
        async with db.write_engine.begin() as conn:
            await conn.run_sync(upgrade_to("head"))
        async with db.read() as session:
            rows = (
                await session.execute(
                    select(
                        TradeDeliveryRow.trade_id,
                        TradeDeliveryRow.buyer,
                        TradeDeliveryRow.seller,
                        TradeDeliveryRow.trade_seq,
                    ).order_by(TradeDeliveryRow.trade_id)
                )
            ).all()
        assert [tuple(row) for row in rows] == [
            (str(t["id"]), t["buyer"], t["seller"], t["seq"]) for t in (_trade(3), _trade(8))
        ]
    finally:
        await db.dispose()
