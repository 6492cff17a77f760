"""The settlement worker's round looks for closed epochs with trades and no outbox row
among the epochs still to settle (the partial index ``ix_epochs_unsettled``), not among
every epoch ever closed: the same epochs as the search over all of them, read from the
index on SQLite. Migration ``0030`` counts the trades of epochs closed before
``trade_count`` counted continuous ones, so that the index holds them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from support.migrations import upgrade_to
from support.seeded import seeded_database, trade_row
from support.sqlite_plans import query_plans, recorded
from wattx.store.db import Database
from wattx.store.models import EpochRow, TradeRow
from wattx.store.models_settlement import SettlementOutboxRow
from wattx.store.settlement import epochs_without_outbox

AT = datetime(2026, 6, 1, 8, tzinfo=UTC)
ENDED_BEFORE = 40


def _epoch(epoch_id: int, trades: int, status: str | None) -> dict[str, object]:
    return {
        "id": epoch_id,
        "closed_at": AT,
        "trade_count": trades,
        "expired_count": 0,
        "clearing_prices": "{}",
        "forced": False,
        "settlement_status": status,
    }


def _outbox(epoch_id: int, status: str) -> dict[str, object]:
    return {
        "epoch_id": epoch_id,
        "status": status,
        "merkle_root": "0x",
        "trade_count": 1,
        "payload": "{}",
        "volume_wh": 100,
        "value": 1,
        "fees": 0,
        "attempts": 1,
        "next_attempt_at": AT,
        "created_at": AT,
    }


def _history() -> dict[object, list[dict[str, object]]]:
    """Epochs 0..49: every fifth without trades; with trades, every third settled or in the
    outbox, the others not yet; and an epoch whose outbox row is older than its status."""
    epochs, trades, outbox = [], [], []
    for epoch_id in range(50):
        if epoch_id % 5 == 0:
            epochs.append(_epoch(epoch_id, 0, None))
            continue
        trades.extend(trade_row(100 * epoch_id + k, epoch_id=epoch_id) for k in range(2))
        if epoch_id % 3 == 0:
            epochs.append(_epoch(epoch_id, 2, ("pending", "settled", "failed")[epoch_id % 9 // 3]))
            outbox.append(_outbox(epoch_id, "pending"))
        elif epoch_id == 7:
            epochs.append(_epoch(epoch_id, 2, None))  # an outbox row without the status
            outbox.append(_outbox(epoch_id, "confirmed"))
        else:
            epochs.append(_epoch(epoch_id, 2, None))
    return {EpochRow: epochs, TradeRow: trades, SettlementOutboxRow: outbox}


async def _searched_over_every_epoch(session: AsyncSession, ended_before: int) -> list[int]:
    """The search as it was before the index: every closed epoch, its trades asked."""
    query = (
        select(EpochRow.id)
        .outerjoin(SettlementOutboxRow, SettlementOutboxRow.epoch_id == EpochRow.id)
        .where(
            SettlementOutboxRow.epoch_id.is_(None),
            EpochRow.id < ended_before,
            select(TradeRow.id).where(TradeRow.epoch_id == EpochRow.id).exists(),
        )
        .order_by(EpochRow.id)
    )
    return list(await session.scalars(query))


async def test_the_epochs_found_are_those_every_epoch_would_give(database_url: str) -> None:
    async with (
        seeded_database(database_url, _history(), migrate=True) as db,
        db.read() as session,
    ):
        for ended_before in (0, 7, 8, ENDED_BEFORE, 100):
            found = await epochs_without_outbox(session, ended_before=ended_before)
            assert found == await _searched_over_every_epoch(session, ended_before)
        found = await epochs_without_outbox(session, ended_before=ENDED_BEFORE)
    assert found == [e for e in range(ENDED_BEFORE) if e % 5 and e % 3 and e != 7]


async def test_on_sqlite_a_round_reads_the_epochs_still_to_settle(tmp_path: Path) -> None:
    path = tmp_path / "epochs.sqlite3"
    async with seeded_database(f"sqlite+aiosqlite:///{path}", _history(), migrate=True) as db:
        with recorded([db.read_engine]) as reads:
            async with db.read() as session:
                await epochs_without_outbox(session, ended_before=ENDED_BEFORE)
    candidates, in_outbox = query_plans(path, reads)
    assert candidates == ["SEARCH epochs USING INDEX ix_epochs_unsettled (id<?)"], candidates
    assert in_outbox == [
        "SEARCH settlement_outbox USING COVERING INDEX sqlite_autoindex_settlement_outbox_1"
        " (epoch_id=?)"
    ], in_outbox


async def test_the_migration_counts_the_trades_of_older_epochs(empty_url: str) -> None:
    db = Database(empty_url)
    at = AT.replace(tzinfo=None) if empty_url.startswith("sqlite") else AT
    try:
        async with db.write_engine.begin() as conn:
            await conn.run_sync(upgrade_to("0029"))
            # Epoch 3 was closed before continuous trades counted: 0, though it has two.
            # Epochs 8 and 9 had their batch in the outbox before 0004: no status.
            for epoch_id, count in ((3, 0), (4, 0), (5, 1), (8, 1), (9, 1)):
                await conn.execute(
                    text(
                        "INSERT INTO epochs (id, closed_at, trade_count, expired_count,"
                        " clearing_prices, forced) VALUES (:id, :at, :count, 0, '{}', false)"
                    ),
                    {"id": epoch_id, "at": at, "count": count},
                )
            for epoch_id, status, tx_hash in ((8, "confirmed", "0xab"), (9, "pending", None)):
                await conn.execute(
                    text(
                        "INSERT INTO settlement_outbox (epoch_id, status, merkle_root,"
                        " trade_count, payload, volume_wh, value, fees, attempts,"
                        " next_attempt_at, tx_hash, created_at) VALUES (:id, :status, '0x', 1,"
                        " '{}', 1, 1, 0, 1, :at, :tx_hash, :at)"
                    ),
                    {"id": epoch_id, "status": status, "tx_hash": tx_hash, "at": at},
                )
            for n, epoch_id in enumerate((3, 3, 5, 8, 9)):
                await conn.execute(
                    text(
                        "INSERT INTO trades (id, seq, epoch_id, zone, buy_order_id,"
                        " sell_order_id, buyer, seller, buyer_zone, seller_zone, qty_wh,"
                        " delivered_wh, price, value, buyer_fee, seller_fee, wheeling_fee,"
                        " executed_at) VALUES (:id, :seq, :epoch, 'z', 'b', 's', 'buyer',"
                        " 'seller', 'z', 'z', 1, 1, 1, 1, 0, 0, 0, :at)"
                    ),
                    {"id": f"t{n}", "seq": n, "epoch": epoch_id, "at": at},
                )
        async with db.write_engine.begin() as conn:
            await conn.run_sync(upgrade_to("head"))
        async with db.read() as session:
            epochs = {
                row.id: (row.trade_count, row.settlement_status, row.settlement_tx_hash)
                for row in await session.scalars(select(EpochRow))
            }
            assert epochs == {
                3: (2, None, None),
                4: (0, None, None),
                5: (1, None, None),
                8: (1, "settled", "0xab"),
                9: (1, "pending", None),
            }
            trades = dict(
                (await session.execute(select(TradeRow.epoch_id, TradeRow.settlement_status))).all()
            )
            assert trades == {3: None, 5: None, 8: "settled", 9: "pending"}
            assert await epochs_without_outbox(session, ended_before=10) == [3, 5]
            assert await session.scalar(select(func.count()).select_from(TradeRow)) == 5
    finally:
        await db.dispose()
