"""A start, or a replica that becomes the market writer, looks for the epochs with trades
and no closure among the trades still to settle (the partial index
``ix_trades_unsettled``), not among every trade ever made: the same epochs as a search of
every trade, and on SQLite a read of that index alone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from support.seeded import seeded_database, trade_row
from support.sqlite_plans import query_plans, recorded
from wattx.store.epochs import unclosed_epochs_with_trades
from wattx.store.models import EpochRow, TradeRow

AT = datetime(2026, 6, 1, 8, tzinfo=UTC)


def _history() -> dict[object, list[dict[str, object]]]:
    """Epochs 0..29 closed (0..19 settled, 20..24 in the outbox, 25..29 not yet); trades in
    those and in the unclosed epochs 30..34, one of them closed early with trades after."""
    epochs = [
        {
            "id": epoch,
            "closed_at": AT,
            "trade_count": 2,
            "expired_count": 0,
            "clearing_prices": "{}",
            "forced": epoch == 33,
            "settlement_status": "settled" if epoch < 20 else "pending" if epoch < 25 else None,
        }
        for epoch in (*range(30), 33)
    ]
    trades = [
        trade_row(
            10 * epoch + k,
            epoch_id=epoch,
            settlement_status="settled" if epoch < 20 else "pending" if epoch < 25 else None,
        )
        for epoch in range(35)
        for k in range(2)
    ]
    return {EpochRow: epochs, TradeRow: trades}


async def _searched_over_every_trade(session: AsyncSession) -> set[int]:
    closed = select(EpochRow.id).where(EpochRow.id == TradeRow.epoch_id).exists()
    return set(await session.scalars(select(TradeRow.epoch_id).where(~closed).distinct()))


async def test_the_epochs_found_are_those_every_trade_would_give(database_url: str) -> None:
    async with (
        seeded_database(database_url, _history(), migrate=True) as db,
        db.read() as session,
    ):
        found = await unclosed_epochs_with_trades(session)
        assert found == await _searched_over_every_trade(session)
    assert found == {30, 31, 32, 34}


async def test_on_sqlite_the_trades_still_to_settle_are_read(tmp_path: Path) -> None:
    path = tmp_path / "trades.sqlite3"
    async with seeded_database(f"sqlite+aiosqlite:///{path}", _history(), migrate=True) as db:
        with recorded([db.read_engine]) as reads:
            async with db.read() as session:
                await unclosed_epochs_with_trades(session)
    (plan,) = query_plans(path, reads)
    assert plan[0] == "SCAN trades USING INDEX ix_trades_unsettled", plan
