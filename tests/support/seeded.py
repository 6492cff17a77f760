"""A database holding given rows for the length of a test's block: the set-up of a read's
test (fill the tables the read goes through, then read), with the engine disposed after."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
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
