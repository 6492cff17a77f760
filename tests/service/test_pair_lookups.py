"""Look-ups by (owner, key) pairs find exactly the pairs stored, in chunks, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from support.sqlite_plans import query_plans, recorded
from wattx.store import Database, upgrade_to_head
from wattx.store.idempotency import stored_responses
from wattx.store.models import IdempotencyRow, OrderRow
from wattx.store.orders import used_client_ids
from wattx.store.pairs import PAIRS_PER_STATEMENT

AT = datetime(2026, 6, 1, 8, tzinfo=UTC)
OWNERS = [f"owner{i:02d}" for i in range(25)]


def _stored_and_wanted(per_owner: int) -> tuple[set[tuple[str, str]], list[tuple[str, str]]]:
    """Each owner's own keys; wanted: half of them, another owner's keys, unknown keys."""
    stored = {(o, f"{o}-key{k}") for o in OWNERS for k in range(per_owner)}
    wanted = [(o, f"{o}-key{k}") for o in OWNERS for k in range(0, per_owner, 2)]
    wanted += [(o, f"{OWNERS[(i + 1) % len(OWNERS)]}-key0") for i, o in enumerate(OWNERS)]
    wanted += [(o, f"{o}-unknown{k}") for o in OWNERS for k in range(4)]
    return stored, wanted


async def test_stored_responses_finds_exactly_the_stored_pairs(database_url: str) -> None:
    stored, wanted = _stored_and_wanted(per_owner=24)
    assert len(wanted) > 2 * PAIRS_PER_STATEMENT
    db = Database(database_url)
    try:
        async with db.write() as session:
            for owner, key in sorted(stored):
                session.add(
                    IdempotencyRow(
                        owner_id=owner,
                        key=key,
                        request_hash="0" * 64,
                        status_code=201,
                        response_body=f"{owner}/{key}",
                        created_at=AT,
                    )
                )
        async with db.read() as session:
            found = await stored_responses(session, wanted)
    finally:
        await db.dispose()

    assert set(found) == stored & set(wanted)
    assert all(row.response_body == f"{o}/{k}" for (o, k), row in found.items())


async def test_used_client_ids_finds_exactly_the_used_pairs(database_url: str) -> None:
    stored, wanted = _stored_and_wanted(per_owner=12)
    assert len(wanted) > PAIRS_PER_STATEMENT
    db = Database(database_url)
    try:
        async with db.write() as session:
            for seq, (owner, client_id) in enumerate(sorted(stored), start=1):
                session.add(
                    OrderRow(
                        id=f"order{seq:05d}",
                        owner_id=owner,
                        side="buy",
                        kind="limit",
                        zone="default",
                        epoch_id=1,
                        qty_wh=1_000,
                        limit_price=100_000,
                        client_order_id=client_id,
                        created_at=AT,
                        updated_at=AT,
                        seq=seq,
                        filled_wh=0,
                        cancelled_wh=0,
                        status="open",
                        escrow_asset="credit",
                        escrow_remaining=0,
                    )
                )
        async with db.read() as session:
            used = await used_client_ids(session, wanted)
    finally:
        await db.dispose()

    assert used == stored & set(wanted)


async def test_on_sqlite_the_pair_look_ups_search_an_index_instead_of_scanning(
    tmp_path: Path,
) -> None:
    """SQLite scans the whole table for ``(a, b) IN (VALUES ...)``; these look-ups must not."""
    _stored, wanted = _stored_and_wanted(per_owner=2)
    path = tmp_path / "pairs.sqlite3"
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade_to_head(db)
        with recorded([db.read_engine]) as reads:
            async with db.read() as session:
                await stored_responses(session, wanted)
                await used_client_ids(session, wanted)
    finally:
        await db.dispose()

    assert len(reads) == 2
    for plan in query_plans(path, reads):
        assert not any(step.startswith("SCAN") for step in plan), plan
        assert any(step.startswith("SEARCH") for step in plan), plan
