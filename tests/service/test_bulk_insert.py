"""Rows written around the ORM (wattx.store.bulk) are stored as the ORM stores them: trades
and journal entries, every column, times as UTC, on SQLite and on PostgreSQL (``COPY``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from wattx.domain import Trade
from wattx.store import Database, journal
from wattx.store import trades as trade_repo
from wattx.store.models import TradeRow
from wattx.store.models_statements import LedgerEntryRow

AT = datetime(2026, 12, 4, 0, 30, tzinfo=UTC)


def _trade(index: int) -> Trade:
    return Trade(
        id=f"bulk-trade-{index}",
        seq=10 + index,
        epoch_id=7,
        zone="main",
        buy_order_id=f"bulk-buy-{index}",
        sell_order_id=f"bulk-sell-{index}",
        buyer="bulk-buyer",
        seller="bulk-seller",
        buyer_zone="main",
        seller_zone="north",
        qty_wh=100 + index,
        delivered_wh=99 + index,
        price=120_000,
        value=12_000_000 + index,
        buyer_fee=1_000,
        seller_fee=2_000,
        wheeling_fee=300,
        # Another offset than UTC, and none given (the insert's time then).
        executed_at=AT.astimezone(timezone(timedelta(hours=2))) if index else None,
    )


def _stored(row: object, columns: dict[str, object]) -> dict[str, object]:
    return {name: getattr(row, name) for name in columns}


async def test_trades_and_journal_entries_are_stored_as_given(database_url: str) -> None:
    db = Database(database_url)
    try:
        trades = [trade_repo.trade_columns(_trade(i), AT) for i in range(3)]
        entries = [
            journal.entry("bulk-buyer", "credit", -12_001_000, kind="trade", at=AT, ref="t0"),
            journal.entry("bulk-seller", "energy", 0, kind="trade", at=AT),  # left out
            journal.entry("bulk-seller", "credit", 11_998_000, kind="trade", at=AT + timedelta(1)),
        ]
        async with db.write() as session:
            await trade_repo.insert_trades(session, trades)
            await journal.record_many(session, entries)
        async with db.read() as session:
            stored = list(await session.scalars(select(TradeRow).order_by(TradeRow.seq)))
            kept = list(await session.scalars(select(LedgerEntryRow).order_by(LedgerEntryRow.id)))
        assert [
            _stored(row, columns) for row, columns in zip(stored, trades, strict=True)
        ] == trades
        assert all(row.executed_at.tzinfo == UTC for row in stored)
        assert [_stored(row, entries[0]) for row in kept] == [entries[0], entries[2]]
        assert all(row.at.tzinfo == UTC for row in kept)
    finally:
        await db.dispose()


def test_the_journal_writes_every_column_an_entry_has() -> None:
    assert tuple(journal.entry("a", "credit", 1, kind="k", at=AT)) == journal._ENTRY_COLUMNS


async def test_a_naive_time_is_refused_and_nothing_is_stored(database_url: str) -> None:
    db = Database(database_url)
    try:
        naive = trade_repo.trade_columns(_trade(0), AT.replace(tzinfo=None))

        async def write_one_then_the_naive_one() -> None:
            async with db.write() as session:
                await trade_repo.insert_trades(session, [trade_repo.trade_columns(_trade(1), AT)])
                await trade_repo.insert_trades(session, [naive])

        with pytest.raises(ValueError, match="naive"):
            await write_one_then_the_naive_one()
        async with db.read() as session:
            assert list(await session.scalars(select(TradeRow))) == []
    finally:
        await db.dispose()
