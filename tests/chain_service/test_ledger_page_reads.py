"""The public ledger's pages of chain events, newest first: exactly the events in chain
order, read down an index in that order (on SQLite no sort of every event indexed, which a
page of a public route must not cost). Its overview sums every retirement, not a page (its
settled totals are running totals: ``test_ledger_totals.py``). The public home page's zone
activity reads the trades of the epochs it covers alone."""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from support.seeded import seeded_database, trade_row
from support.sqlite_plans import query_plans, recorded
from wattx.services.onchain.ledger_public import PublicLedgerService
from wattx.store.models import TradeRow
from wattx.store.models_settlement import ChainEventRow
from wattx.store.settlement import list_events
from wattx.units import wh_to_energy_base_units

Read = Callable[[AsyncSession], Awaitable[Any]]


def _events() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [
        {
            "block_number": block,
            "tx_hash": f"0x{block:064x}",
            "log_index": log_index,
            "contract": "MeterOracle",
            "name": "Retired" if (block + log_index) % 5 == 0 else "ReadingMinted",
            "args": "{}",
        }
        for block in range(30)
        for log_index in range(4)
    ]
    random.Random(7).shuffle(rows)  # stored out of chain order
    return rows


async def test_pages_are_the_events_newest_first(database_url: str) -> None:
    rows = _events()
    async with seeded_database(database_url, {ChainEventRow: rows}) as db, db.read() as session:
        for names in (None, ("Retired",)):
            for limit, offset in ((50, 0), (7, 0), (7, 14), (10, 100)):
                found = await list_events(session, names=names, limit=limit, offset=offset)
                expected = sorted(
                    (
                        (int(str(r["block_number"])), int(str(r["log_index"])))
                        for r in rows
                        if names is None or r["name"] in names
                    ),
                    reverse=True,
                )[offset : offset + limit]
                assert [(e.block_number, e.log_index) for e in found] == expected


async def _sqlite_plan_of(
    tmp_path: Path, rows: Mapping[Any, Sequence[Mapping[str, object]]], read: Read
) -> list[str]:
    """SQLite's plan of the one statement ``read`` runs on a database holding ``rows``."""
    path = tmp_path / "ledger.sqlite3"
    async with seeded_database(f"sqlite+aiosqlite:///{path}", rows, migrate=True) as db:
        with recorded([db.read_engine]) as reads:
            async with db.read() as session:
                await read(session)
    (plan,) = query_plans(path, reads)
    return plan


async def test_on_sqlite_a_page_is_read_in_index_order(tmp_path: Path) -> None:
    plan = await _sqlite_plan_of(
        tmp_path,
        {ChainEventRow: _events()},
        lambda session: list_events(session, names=None, limit=10, offset=10),
    )
    assert plan == ["SCAN chain_events USING INDEX ix_chain_events_block_log"], plan


async def test_the_overview_sums_every_retirement(database_url: str) -> None:
    rows = _events()
    retired = [r for r in rows if r["name"] == "Retired"]
    for wh, row in enumerate(retired, start=1):
        row["args"] = json.dumps({"amount": wh_to_energy_base_units(wh), "reason": "home"})
    async with seeded_database(database_url, {ChainEventRow: rows}) as db:
        with recorded([db.read_engine], lambda s: "chain_events" in s) as reads:
            overview = await PublicLedgerService(db).overview()
    assert overview.retired_wh == sum(range(1, len(retired) + 1))
    assert overview.supply_wh == overview.minted_wh - overview.retired_wh
    (read,) = reads
    assert "LIMIT" not in read[0].upper(), read


def _trades() -> list[dict[str, object]]:
    return [
        trade_row(
            seq,
            epoch_id=seq // 5,
            zone=("north", "south", "east")[seq % 3],
            buyer=f"b{seq % 4}",
            seller=f"s{seq % 3}",
            qty_wh=10 + seq,
            price=100 + (seq * 37) % 50,
        )
        for seq in range(120)
    ]


async def test_zone_activity_is_the_trades_since_the_epoch(database_url: str) -> None:
    rows = _trades()
    async with seeded_database(database_url, {TradeRow: rows}) as db:
        activity = await PublicLedgerService(db).zone_activity(from_epoch=17)
    recent = [r for r in rows if int(str(r["epoch_id"])) >= 17]
    for zone in ("north", "south", "east"):
        mine = [r for r in recent if r["zone"] == zone]
        prices = [int(str(r["price"])) for r in mine]
        found = activity[zone]
        assert (found.trades, found.volume_wh) == (
            len(mine),
            sum(int(str(r["qty_wh"])) for r in mine),
        )
        assert (found.low_price, found.high_price) == (min(prices), max(prices))
        newest = max(mine, key=lambda r: int(str(r["seq"])))
        assert found.last_price == newest["price"]
        assert found.households == len({r["buyer"] for r in mine} | {r["seller"] for r in mine})


async def test_on_sqlite_zone_activity_reads_the_epochs_trades_alone(tmp_path: Path) -> None:
    path = tmp_path / "activity.sqlite3"
    async with seeded_database(
        f"sqlite+aiosqlite:///{path}", {TradeRow: _trades()}, migrate=True
    ) as db:
        with recorded([db.read_engine], lambda statement: "trades" in statement) as reads:
            await PublicLedgerService(db).zone_activity(from_epoch=17)
    plans = query_plans(path, reads)
    assert len(plans) == 3, plans
    for plan in plans:
        assert not [step for step in plan if step.startswith("SCAN trades")], plan
