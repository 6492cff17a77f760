"""The delivery sweep (every chain-worker round) reads the live deliveries and the sent
commands by their keys and indexes, never every delivery or command ever made: on
SQLite no statement of a sweep scans those tables or lists a subquery over them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from support.sqlite_plans import query_plans, recorded
from wattx.api.state import AppState
from wattx.store.models_devices import DeviceCommandRow, TradeDeliveryRow
from wattx.store.models_nodes import NodeCommandRow

AT = datetime(2026, 6, 1, 8, tzinfo=UTC)
HISTORY = 40
HISTORIC_TABLES = ("trade_deliveries", "device_commands", "node_commands")


def _touches_history(statement: str) -> bool:
    return any(table in statement for table in HISTORIC_TABLES)


async def _history(state: AppState) -> None:
    """Deliveries long delivered, with their commands applied and acked."""
    async with state.db.write() as session:
        await session.execute(
            insert(TradeDeliveryRow),
            [
                {
                    "trade_id": f"t{i}",
                    "epoch_id": i,
                    "buyer": "buyer",
                    "seller": "seller",
                    "trade_seq": i,
                    "state": "delivered",
                    "contracted_wh": 10,
                    "updated_at": AT,
                }
                for i in range(HISTORY)
            ],
        )
        await session.execute(
            insert(NodeCommandRow),
            [
                {
                    "id": f"n{i}",
                    "node_id": "node",
                    "type": "device.schedule",
                    "payload": "{}",
                    "state": "applied",
                    "created_by": "op",
                    "created_at": AT,
                    "not_before": AT,
                    "expires_at": AT + timedelta(hours=1),
                    "retries": 0,
                    "next_attempt_at": AT,
                    "finished_at": AT,
                }
                for i in range(HISTORY)
            ],
        )
        await session.execute(
            insert(DeviceCommandRow),
            [
                {
                    "id": f"d{i}",
                    "device_id": "device",
                    "trade_id": f"t{i}",
                    "node_command_id": f"n{i}",
                    "type": "schedule",
                    "payload": "{}",
                    "status": "acked",
                    "issued_at": AT,
                    "expires_at": AT + timedelta(hours=1),
                    "acked_at": AT,
                }
                for i in range(HISTORY)
            ],
        )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_sweep_reads_the_live_rows_by_index(state: AppState, database_url: str) -> None:
    await _history(state)
    with recorded([state.db.write_engine, state.db.read_engine], _touches_history) as statements:
        assert await state.delivery.sweep() == 0

    assert len(statements) >= 3  # the acks, the failing commands, the live deliveries
    for plan in query_plans(database_url.removeprefix("sqlite+aiosqlite:///"), statements):
        for table in HISTORIC_TABLES:
            assert not any(step.startswith(f"SCAN {table}") for step in plan), plan
        assert not any(step.startswith("LIST SUBQUERY") for step in plan), plan
