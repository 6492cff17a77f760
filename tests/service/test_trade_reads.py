"""Reads of the trades that pages and periodic views make, each bounded by what it shows:
a party's trades newest first (down the (buyer, seq) and (seller, seq) indexes), a zone's
newest (down (zone, seq), even for a zone that has none), and the price history's page
(only the newest traded epochs grouped). Each gives exactly the trades it should, and on
SQLite reads no more than its page, so a page costs the same after a year as after a day."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path

from support.seeded import seeded_database
from support.sqlite_plans import query_plans, recorded
from wattx.store import Database
from wattx.store.models import TradeRow
from wattx.store.settlement import price_history
from wattx.store.trades import list_trades, recent_trades

AT = datetime(2026, 6, 1, 8, tzinfo=UTC)
PARTIES = ["ann", "bob", "cyd", "dee"]


def _trades() -> list[dict[str, object]]:
    rows = []
    for seq in range(1, 121):
        buyer = PARTIES[seq % 4]
        seller = PARTIES[(seq // 4) % 4]  # sometimes the buyer too
        rows.append(
            {
                "id": f"t{seq:04d}",
                "seq": seq,
                "epoch_id": seq // 10,
                "zone": "main" if seq % 3 else "north",
                "buy_order_id": f"b{seq}",
                "sell_order_id": f"s{seq}",
                "buyer": buyer,
                "seller": seller,
                "buyer_zone": "main",
                "seller_zone": "main",
                "qty_wh": seq,
                "delivered_wh": seq,
                "price": 100,
                "value": 100 * seq,
                "buyer_fee": 0,
                "seller_fee": 0,
                "wheeling_fee": 0,
                "executed_at": AT,
            }
        )
    return rows


async def test_a_partys_pages_are_its_trades_newest_first(database_url: str) -> None:
    rows = _trades()
    async with seeded_database(database_url, {TradeRow: rows}) as db:
        cases = [
            (party, zone, epoch_id, limit, offset)
            for party in (*PARTIES, "nobody", None)
            for zone, epoch_id in ((None, None), ("north", None), (None, 7), ("main", 3))
            for limit, offset in ((50, 0), (7, 0), (7, 21), (10, 60))
        ]
        async with db.read() as session:
            for party, zone, epoch_id, limit, offset in cases:
                found = await list_trades(
                    session, party=party, zone=zone, epoch_id=epoch_id, limit=limit, offset=offset
                )
                expected = [
                    row["seq"]
                    for row in sorted(rows, key=lambda r: -int(str(r["seq"])))
                    if party in (None, row["buyer"], row["seller"])
                    and zone in (None, row["zone"])
                    and epoch_id in (None, row["epoch_id"])
                ][offset : offset + limit]
                assert [t.seq for t in found] == expected, (party, zone, epoch_id, limit, offset)


def _sqlite_with_trades(path: Path) -> AbstractAsyncContextManager[Database]:
    return seeded_database(f"sqlite+aiosqlite:///{path}", {TradeRow: _trades()}, migrate=True)


async def test_on_sqlite_a_partys_page_is_read_from_its_indexes(tmp_path: Path) -> None:
    path = tmp_path / "trades.sqlite3"
    async with _sqlite_with_trades(path) as db:
        with recorded([db.read_engine]) as reads:
            async with db.read() as session:
                await list_trades(session, party="ann", zone=None, epoch_id=None, limit=5, offset=5)

    (plan,) = query_plans(path, reads)
    assert not any(step.startswith("SCAN trades") for step in plan), plan
    assert not any("TEMP B-TREE" in step for step in plan), plan
    assert any("ix_trades_buyer_seq" in step for step in plan), plan
    assert any("ix_trades_seller_seq" in step for step in plan), plan


async def test_on_sqlite_a_zones_newest_trades_are_read_from_its_index(tmp_path: Path) -> None:
    path = tmp_path / "trades.sqlite3"
    async with _sqlite_with_trades(path) as db:
        with recorded([db.read_engine]) as reads:
            async with db.read() as session:
                north = await recent_trades(session, zone="north", limit=3)
                assert await recent_trades(session, zone="a-new-feeder", limit=3) == []

    assert [t.seq for t in north] == [120, 117, 114]
    for plan in query_plans(path, reads):
        assert plan == ["SEARCH trades USING INDEX ix_trades_zone_seq (zone=?)"], plan


async def test_the_price_history_groups_the_pages_epochs(database_url: str) -> None:
    rows = _trades()
    async with seeded_database(database_url, {TradeRow: rows}) as db, db.read() as session:
        for zone in (None, "north", "nowhere"):
            for from_epoch in (None, 5):
                for limit, offset in ((50, 0), (3, 0), (4, 5), (5, 30)):
                    found = await price_history(
                        session, limit=limit, offset=offset, zone=zone, from_epoch=from_epoch
                    )
                    groups: dict[tuple[int, str], list[dict[str, object]]] = {}
                    for row in rows:
                        epoch_id, row_zone = int(str(row["epoch_id"])), str(row["zone"])
                        if zone in (None, row_zone) and (from_epoch or 0) <= epoch_id:
                            groups.setdefault((epoch_id, row_zone), []).append(row)
                    newest_first = sorted(groups.items(), key=lambda k: (-k[0][0], k[0][1]))
                    expected = [
                        (e, z, 100, 100, _total(g, "qty_wh"), _total(g, "value"))
                        for (e, z), g in newest_first
                    ][offset : offset + limit]
                    assert found == expected, (zone, from_epoch, limit, offset)


def _total(rows: list[dict[str, object]], column: str) -> int:
    return sum(int(str(row[column])) for row in rows)
