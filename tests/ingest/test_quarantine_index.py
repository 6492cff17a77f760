"""The quarantined readings' own index (migration 0022): it holds quarantined readings
only, and the operator's list of them is read through it on PostgreSQL whatever plan
the server keeps for the statement."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, text

from wattx.api.state import AppState
from wattx.store import readings as repo

pytestmark = pytest.mark.postgres

INDEX = "ix_readings_quarantined_received"


async def test_the_index_holds_quarantined_readings_only(state: AppState) -> None:
    async with state.db.read() as session:
        if state.db.is_sqlite:
            found = await session.scalar(
                text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"),
                {"name": INDEX},
            )
        else:
            found = await session.scalar(
                text("SELECT indexdef FROM pg_indexes WHERE indexname = :name"), {"name": INDEX}
            )
        catalog = "sqlite_master WHERE name" if state.db.is_sqlite else "pg_indexes WHERE indexname"
        old = await session.scalar(
            text(f"SELECT count(*) FROM {catalog} = 'ix_readings_status_received'")
        )
    assert found is not None
    assert "received_at" in found
    assert "status" in found.split("WHERE", 1)[1]
    assert "'quarantined'" in found.split("WHERE", 1)[1]
    assert old == 0


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_the_quarantine_list_reads_through_the_index_on_a_generic_plan(
    state: AppState,
) -> None:
    statements: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = state.db.read_engine.sync_engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        async with state.db.read() as session:
            await repo.quarantined_readings(session, meter_id=None, limit=50, offset=0)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    (statement,) = [s for s in statements if "FROM readings" in s]
    async with state.db.read() as session:
        # A plan for any parameter values, as a server may keep for a prepared statement;
        # a scan of every reading is what it would fall back to if the condition on the
        # status were a parameter.
        await session.execute(text("SET LOCAL plan_cache_mode = force_generic_plan"))
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.execute(f"PREPARE quarantine_list AS {statement}")
        try:
            plan = "\n".join(
                r[0] for r in await driver.fetch("EXPLAIN EXECUTE quarantine_list(50, 0)")
            )
        finally:
            await driver.execute("DEALLOCATE quarantine_list")
    assert "Seq Scan" not in plan, plan
    assert "Index" in plan, plan
