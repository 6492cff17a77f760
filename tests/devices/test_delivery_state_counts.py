"""The deliveries counted per state (``delivery_state_counts``): the moves a transaction
reports are written when it commits, and forgotten when it rolls back; the operator's
summary reads the counts, never the deliveries. Migration ``0036`` counts the deliveries
made before it (SQLite and PostgreSQL). The delivery flows' own tests check the counts
against counting every delivery (``_assert_delivery_counts_agree``)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from support.migrations import upgrade_to
from support.sqlite_plans import recorded
from wattx.bus.memory import InProcessBus
from wattx.domain.epochs import EpochSchedule, SystemClock
from wattx.services.measurement.delivery import DeliveryService
from wattx.store import upgrade_to_head
from wattx.store.db import Database
from wattx.store.delivery_states import count_moves, state_counts

AT = datetime(2026, 6, 1, 8, tzinfo=UTC)
STATES = ("open", "funds_locked", "transferring", "delivered", "settled", "refunded")


class _RollBackError(Exception):
    """Raised inside a transaction to roll it back."""


async def _moves_rolled_back(db: Database) -> None:
    async with db.write() as session:
        count_moves(session, [(None, "open")] * 9)
        raise _RollBackError


async def test_moves_count_when_their_transaction_commits(database_url: str) -> None:
    db = Database(database_url)
    try:
        await upgrade_to_head(db)
        async with db.write() as session:
            count_moves(session, [(None, "open")] * 5)
            count_moves(session, [("open", "funds_locked")] * 2)
            count_moves(session, [("open", "open")])  # no move
        async with db.write() as session:
            count_moves(session, [("funds_locked", "transferring"), ("open", "refunded")])
        with pytest.raises(_RollBackError):
            await _moves_rolled_back(db)
        async with db.write() as session:
            count_moves(session, [("transferring", "delivered"), ("delivered", "settled")])
        async with db.read() as session:
            counts = await state_counts(session)
        # A state that emptied (transferring, delivered) is left out, as a count would.
        assert counts == {"open": 2, "funds_locked": 1, "refunded": 1, "settled": 1}
    finally:
        await db.dispose()


async def test_the_summary_reads_the_counts_not_the_deliveries(database_url: str) -> None:
    db = Database(database_url)
    try:
        await upgrade_to_head(db)
        async with db.write() as session:
            count_moves(session, [(None, "open")] * 3)
        service = DeliveryService(db, InProcessBus(), SystemClock(), EpochSchedule(), grace_s=60)
        with recorded([db.read_engine]) as reads:
            assert await service.summary() == {"open": 3}
        assert not [s for s, _ in reads if "trade_deliveries" in s], reads
    finally:
        await db.dispose()


async def test_the_migration_counts_the_deliveries_made_before_it(empty_url: str) -> None:
    db = Database(empty_url)
    at = AT.replace(tzinfo=None) if db.is_sqlite else AT  # SQLite holds naive UTC times
    deliveries = [
        {"trade_id": f"t{n}", "epoch_id": n // 4, "buyer": "b", "seller": "s",
         "trade_seq": n, "state": STATES[n % 7 % 6], "contracted_wh": 100, "updated_at": at}
        for n in range(45)
    ]  # fmt: skip
    try:
        async with db.write_engine.begin() as conn:
            await conn.run_sync(upgrade_to("0035"))
            await conn.execute(
                text(
                    "INSERT INTO trade_deliveries (trade_id, epoch_id, buyer, seller,"
                    " trade_seq, state, contracted_wh, updated_at) VALUES (:trade_id,"
                    " :epoch_id, :buyer, :seller, :trade_seq, :state, :contracted_wh,"
                    " :updated_at)"
                ),
                deliveries,
            )
        async with db.write_engine.begin() as conn:
            await conn.run_sync(upgrade_to("head"))
        async with db.read() as session:
            counts = await state_counts(session)
        expected: dict[str, int] = {}
        for delivery in deliveries:
            state = str(delivery["state"])
            expected[state] = expected.get(state, 0) + 1
        assert counts == expected
        assert sum(counts.values()) == len(deliveries)
    finally:
        await db.dispose()


async def test_moves_inside_a_savepoint_are_refused(database_url: str) -> None:
    # A savepoint rolled back would have to forget its moves and not the others: refused.
    db = Database(database_url)
    try:
        await upgrade_to_head(db)
        async with db.write() as session, session.begin_nested():
            with pytest.raises(RuntimeError, match="savepoint"):
                count_moves(session, [(None, "open")])
    finally:
        await db.dispose()
