"""What a chain-worker round reads (every ``settlement_tick_s``) it finds by index, never
by going through every settlement, mint intent, retirement or epoch ever recorded: on
SQLite no statement of a round scans those tables, and none that wants the newest few
sorts every match to find them. Those reads give the newest first (migration ``0031``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from support.sqlite_plans import query_plans, recorded
from wattx.api.state import AppState
from wattx.services.onchain.settlement import ChainWorkerTask
from wattx.store import settlement as repo
from wattx.store.models import EpochRow
from wattx.store.models_settlement import MintIntentRow, RetirementRow, SettlementOutboxRow

AT = datetime(2026, 6, 1, 8, tzinfo=UTC)
HISTORY = 60
HISTORIC_TABLES = ("settlement_outbox", "mint_intents", "token_retirements", "epochs")


def _touches_history(statement: str) -> bool:
    return any(table in statement for table in HISTORIC_TABLES)


async def _history(state: AppState) -> None:
    """Epochs long settled (their transactions not hashes the chain must know), confirmed
    mint intents, retirements long confirmed and one just made."""
    async with state.db.write() as session:
        await session.execute(
            insert(EpochRow),
            [
                {
                    "id": epoch,
                    "closed_at": AT,
                    "trade_count": epoch % 3,
                    "expired_count": 0,
                    "clearing_prices": "{}",
                    "forced": False,
                    "settlement_status": "settled" if epoch % 3 else None,
                }
                for epoch in range(HISTORY)
            ],
        )
        await session.execute(
            insert(SettlementOutboxRow),
            [
                {
                    "epoch_id": epoch,
                    "status": "confirmed",
                    "merkle_root": "0x",
                    "trade_count": 1,
                    "payload": "{}",
                    "volume_wh": 1,
                    "value": 1,
                    "fees": 0,
                    "attempts": 1,
                    "next_attempt_at": AT,
                    "block_number": epoch,
                    "created_at": AT,
                }
                for epoch in range(HISTORY)
                if epoch % 3
            ],
        )
        await session.execute(
            insert(MintIntentRow),
            [
                {
                    "id": f"0x{period:064x}",
                    "period": period,
                    "status": "confirmed",
                    "payload": "[]",
                    "total_wh": 1,
                    "start_block": period,
                    "attempts": 1,
                    "block_number": period,
                    "created_at": AT,
                }
                for period in range(HISTORY)
            ],
        )
        await session.execute(
            insert(RetirementRow),
            [
                {
                    "user_id": "u",
                    "wh": 1,
                    "reason": "home",
                    "status": "confirmed" if n else "pending",
                    "created_at": datetime.now(UTC) if n == 0 else AT - timedelta(days=n),
                }
                for n in range(HISTORY)
            ],
        )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_round_reads_by_index(state: AppState, database_url: str) -> None:
    await _history(state)
    worker = ChainWorkerTask(
        state.settlement, state.minting, state.retirement, tick_s=1, delivery=state.delivery
    )
    with recorded([state.db.write_engine, state.db.read_engine], _touches_history) as statements:
        await worker.run_round()

    read = " ".join(statement for statement, _ in statements)
    for table in HISTORIC_TABLES:
        assert table in read, (table, statements)  # each is read in a round
    plans = query_plans(database_url.removeprefix("sqlite+aiosqlite:///"), statements)
    for (statement, _), plan in zip(statements, plans, strict=True):
        for table in HISTORIC_TABLES:
            assert not any(step.startswith(f"SCAN {table}") for step in plan), plan
        if "LIMIT" in statement.upper():
            # The newest few: read from an index's end, not sorted out of every match.
            assert not any("TEMP B-TREE" in step for step in plan), (statement, plan)


async def test_the_newest_confirmed_come_first(state: AppState) -> None:
    await _history(state)
    async with state.db.read() as session:
        settlements = await repo.confirmed_outbox(session, limit=3)
        intents = await repo.confirmed_mint_intents(session, limit=3)
    assert [row.block_number for row in settlements] == [59, 58, 56]
    assert [row.block_number for row in intents] == [59, 58, 57]
