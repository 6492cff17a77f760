"""A database holding given rows for the length of a test's block: the set-up of a read's
test (fill the tables the read goes through, then read), with the engine disposed after."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert

from wattx.store import Database, upgrade_to_head


@asynccontextmanager
async def seeded_database(
    url: str, rows: Mapping[Any, Sequence[Mapping[str, object]]], *, migrate: bool = False
) -> AsyncIterator[Database]:
    """``url``'s database with ``rows`` (model → its rows) inserted in one transaction;
    ``migrate`` first brings an empty database to the newest migration."""
    db = Database(url)
    try:
        if migrate:
            await upgrade_to_head(db)
        async with db.write() as session:
            for model, model_rows in rows.items():
                await session.execute(insert(model), list(model_rows))
        yield db
    finally:
        await db.dispose()


def trade_row(seq: int, **columns: object) -> dict[str, object]:
    """A ``trades`` row for a read's test: trade ``t<seq>`` with plain values, ``columns``
    replacing any of them (``epoch_id``, ``zone``, ``buyer``, ``seller``, ``price``, ...)."""
    row: dict[str, object] = {
        "id": f"t{seq}",
        "seq": seq,
        "epoch_id": 0,
        "zone": "z",
        "buy_order_id": "b",
        "sell_order_id": "s",
        "buyer": "buyer",
        "seller": "seller",
        "buyer_zone": "z",
        "seller_zone": "z",
        "qty_wh": 10,
        "delivered_wh": 10,
        "price": 1,
        "value": 1,
        "buyer_fee": 0,
        "seller_fee": 0,
        "wheeling_fee": 0,
        "executed_at": datetime(2026, 6, 1, 8, tzinfo=UTC),
    }
    return {**row, **columns}
