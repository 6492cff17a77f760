"""The public ledger's running totals (``ledger_totals``): the overview reads the Wh of
every mint from one row, added to in the transaction that records the mints, and the
confirmed settlements' epochs, volume, value and fees from four rows, counted in or out as
a settlement is confirmed or reopened, never by summing the mints or the settlements
(their numbers grow with every meter and epoch). Migrations ``0029`` and ``0035`` fill
them from what was recorded before them (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from support.migrations import upgrade_to
from support.seeded import seeded_database
from support.sqlite_plans import recorded
from wattx.services.onchain.ledger_public import PublicLedgerService
from wattx.store import upgrade_to_head
from wattx.store.db import Database
from wattx.store.models_settlement import ChainMintRow, SettlementOutboxRow
from wattx.store.settlement import (
    MINTED_WH,
    OUTBOX_CONFIRMED,
    OUTBOX_FAILED,
    OUTBOX_PENDING,
    add_to_ledger_total,
    ledger_total,
    minted_total_wh,
    outbox_entry,
    set_outbox_status,
    settled_totals,
)

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


def _outbox(count: int) -> list[dict[str, Any]]:
    return [
        {
            "epoch_id": epoch,
            "status": (OUTBOX_CONFIRMED, OUTBOX_PENDING, OUTBOX_FAILED)[epoch % 3],
            "merkle_root": "0x",
            "trade_count": 1,
            "payload": "x" * 200,
            "volume_wh": 1_000 + epoch,
            "value": 10 * epoch,
            "fees": epoch % 7,
            "attempts": 1,
            "next_attempt_at": AT,
            "created_at": AT,
        }
        for epoch in range(count)
    ]


async def _summed(session: AsyncSession) -> tuple[int, int, int, int]:
    """The confirmed settlements summed, as the overview did before their running totals."""
    row = SettlementOutboxRow
    query = select(
        func.count(),
        func.coalesce(func.sum(row.volume_wh), 0),
        func.coalesce(func.sum(row.value), 0),
        func.coalesce(func.sum(row.fees), 0),
    ).where(row.status == OUTBOX_CONFIRMED)
    epochs, volume, value, fees = (await session.execute(query)).one()
    return int(epochs), int(volume), int(value), int(fees)


async def test_a_settlement_counts_while_it_is_confirmed(database_url: str) -> None:
    # Seeded behind the totals' back, so the totals start at zero: only changes of status
    # made through set_outbox_status move them.
    rows = _outbox(12)
    async with seeded_database(database_url, {SettlementOutboxRow: rows}, migrate=True) as db:
        moves = [
            (1, OUTBOX_CONFIRMED),  # pending -> confirmed: counted in
            (2, OUTBOX_CONFIRMED),  # failed -> confirmed: counted in
            (4, OUTBOX_CONFIRMED),
            (4, OUTBOX_PENDING),  # reopened (the chain lost it): counted out
            (7, OUTBOX_FAILED),  # pending -> failed: not counted
            (0, OUTBOX_CONFIRMED),  # confirmed already: not counted twice
            (10, OUTBOX_CONFIRMED),
        ]
        for epoch, status in moves:
            async with db.write() as session:
                row = await outbox_entry(session, epoch, lock=db.locks_rows)
                assert row is not None
                await set_outbox_status(session, row, status)
        async with db.read() as session:
            totals = await settled_totals(session)
        counted = [rows[epoch] for epoch in (1, 2, 10)]
        assert totals == (
            3,
            sum(r["volume_wh"] for r in counted),
            sum(r["value"] for r in counted),
            sum(r["fees"] for r in counted),
        )
        with recorded([db.read_engine]) as reads:
            overview = await PublicLedgerService(db).overview()
    assert (overview.settled_epochs, overview.settled_volume_wh) == totals[:2]
    assert (overview.settled_value, overview.fees) == totals[2:]
    assert not [s for s, _ in reads if "settlement_outbox" in s], reads


async def test_the_migration_counts_the_settlements_confirmed_before_it(empty_url: str) -> None:
    db = Database(empty_url)
    columns = list(_outbox(1)[0])
    insert = text(
        f"INSERT INTO settlement_outbox ({', '.join(columns)})"
        f" VALUES ({', '.join(':' + c for c in columns)})"
    )
    naive = db.is_sqlite  # SQLite's columns hold naive UTC times
    try:
        async with db.write_engine.begin() as conn:
            await conn.run_sync(upgrade_to("0034"))
            for row in _outbox(40):
                times = {"next_attempt_at": AT, "created_at": AT}
                if naive:
                    times = {k: v.replace(tzinfo=None) for k, v in times.items()}
                await conn.execute(insert, {**row, **times})
        async with db.write_engine.begin() as conn:
            await conn.run_sync(upgrade_to("head"))
        async with db.read() as session:
            totals = await settled_totals(session)
            assert totals == await _summed(session)
        assert totals[0] == 14
    finally:
        await db.dispose()
