"""The public ledger's running totals (``ledger_totals``): the overview reads the Wh of
every mint from one row, added to in the transaction that records the mints, never by
summing the mints (their number grows with every meter and epoch). Migration ``0029``
fills it from the mints recorded before it (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from support.migrations import upgrade_to
from support.seeded import seeded_database
from support.sqlite_plans import recorded
from wattx.services.onchain.ledger_public import PublicLedgerService
from wattx.store import upgrade_to_head
from wattx.store.db import Database
from wattx.store.models_settlement import ChainMintRow
from wattx.store.settlement import MINTED_WH, add_to_ledger_total, ledger_total, minted_total_wh

AT = datetime(2026, 6, 1, 8, tzinfo=UTC)


def _mints(count: int) -> list[dict[str, object]]:
    return [
        {
            "meter_id": f"m{n % 7}",
            "epoch_id": n,
            "owner_id": f"u{n % 7}",
            "address": "0x" + "0" * 40,
            "wh": 100 + n,
            "tx_hash": f"0x{n:064x}",
            "created_at": AT,
        }
        for n in range(count)
    ]


async def test_additions_accumulate_and_a_total_starts_at_zero(database_url: str) -> None:
    db = Database(database_url)
    try:
        await upgrade_to_head(db)
        async with db.read() as session:
            assert await ledger_total(session, "not_kept") == 0
        async with db.write() as session:
            await add_to_ledger_total(session, "spare", 5)
            await add_to_ledger_total(session, MINTED_WH, 1_200)
        async with db.write() as session:
            await add_to_ledger_total(session, MINTED_WH, 300)
            await add_to_ledger_total(session, "spare", 2)
        async with db.read() as session:
            assert await minted_total_wh(session) == 1_500
            assert await ledger_total(session, "spare") == 7
    finally:
        await db.dispose()


async def test_the_overview_reads_the_total_not_the_mints(database_url: str) -> None:
    # Mints recorded behind the total's back (inserted here directly) are not what it shows:
    # the overview reads the one row the mints' own transactions add to.
    async with seeded_database(database_url, {ChainMintRow: _mints(40)}, migrate=True) as db:
        async with db.write() as session:
            await add_to_ledger_total(session, MINTED_WH, 1_234)
        with recorded([db.read_engine]) as reads:
            overview = await PublicLedgerService(db).overview()
    assert (overview.minted_wh, overview.supply_wh) == (1_234, 1_234)
    assert not [s for s, _ in reads if "chain_mints" in s], reads


async def test_the_migration_sums_the_mints_recorded_before_it(empty_url: str) -> None:
    db = Database(empty_url)
    mints = _mints(25)
    try:
        async with db.write_engine.begin() as conn:
            await conn.run_sync(upgrade_to("0028"))
            for mint in mints:
                await conn.execute(
                    text(
                        "INSERT INTO chain_mints (meter_id, epoch_id, owner_id, address, wh,"
                        " tx_hash, created_at) VALUES (:meter_id, :epoch_id, :owner_id,"
                        " :address, :wh, :tx_hash, :created_at)"
                    ),
                    {**mint, "created_at": AT.replace(tzinfo=None) if db.is_sqlite else AT},
                )
        async with db.write_engine.begin() as conn:
            await conn.run_sync(upgrade_to("head"))
        async with db.read() as session:
            assert await minted_total_wh(session) == sum(int(str(m["wh"])) for m in mints)
    finally:
        await db.dispose()


async def test_the_migration_starts_an_empty_ledger_at_zero(empty_url: str) -> None:
    db = Database(empty_url)
    try:
        await upgrade_to_head(db)
        async with db.read() as session:
            assert await minted_total_wh(session) == 0
        async with db.write() as session:
            await add_to_ledger_total(session, MINTED_WH, 10)
        async with db.read() as session:
            assert await minted_total_wh(session) == 10
    finally:
        await db.dispose()
