"""Migration 0014 on a database that already holds balances and zones (SQLite and
PostgreSQL): each holding becomes an opening journal entry, each zone's tariff is in
force since the zone was created."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from support.migrations import empty_database_url, upgrade_to
from wattx.domain.epochs import EpochSchedule
from wattx.services.funds.statements import StatementService
from wattx.store import journal
from wattx.store.db import Database

CREATED = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with empty_database_url(request.param, tmp_path) as database_url:
        yield database_url


async def test_existing_holdings_and_tariffs_carry_over(url: str) -> None:
    db = Database(url)
    try:
        async with db.write_engine.begin() as conn:
            await conn.run_sync(upgrade_to("0010"))
            await conn.execute(
                text(
                    "INSERT INTO balances (account_id, asset, free, locked) VALUES "
                    "('u1', 'credit', 700, 300), ('u1', 'energy', 0, 0), ('u2', 'energy', 5, 0)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO zones (id, name, tariff_bands, position_km, neighbours, "
                    "import_capacity_wh, export_capacity_wh, mechanism, created_at) VALUES "
                    "('main', 'Main', '[[0, 50000, 300000]]', 0, '[]', NULL, NULL, "
                    "'continuous', :created)"
                ),
                {"created": CREATED.replace(tzinfo=None) if db.is_sqlite else CREATED},
            )
        async with db.write_engine.begin() as conn:
            await conn.run_sync(upgrade_to("head"))
            entries = sorted(
                tuple(r)
                for r in await conn.execute(
                    text("SELECT account_id, asset, amount, kind FROM ledger_entries")
                )
            )
        assert entries == [
            ("u1", "credit", 1000, "opening_balance"),
            ("u2", "energy", 5, "opening_balance"),
        ]
        service = StatementService(db, EpochSchedule(), _Clock())
        statement = await service.statement("u1", 2099, 1)
        assert (statement.credit.opening, statement.credit.closing) == (1000, 1000)
        async with db.read() as session:
            (row,) = await journal.tariff_history(session)
        assert (row.zone_id, row.effective_from, row.bands) == (
            "main",
            CREATED,
            "[[0, 50000, 300000]]",
        )
    finally:
        await db.dispose()


class _Clock:
    def now(self) -> datetime:
        return datetime(2099, 6, 1, tzinfo=UTC)
