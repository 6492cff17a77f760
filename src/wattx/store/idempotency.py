"""Repository of stored responses to mutations sent with an ``Idempotency-Key``."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.models import IdempotencyRow
from wattx.store.pairs import pair_filters


async def stored_response(session: AsyncSession, owner_id: str, key: str) -> IdempotencyRow | None:
    query = select(IdempotencyRow).where(
        IdempotencyRow.owner_id == owner_id, IdempotencyRow.key == key
    )
    return (await session.scalars(query)).first()


async def stored_responses(
    session: AsyncSession, pairs: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], IdempotencyRow]:
    """The stored responses of these ``(owner_id, key)`` pairs that have one (one query)."""
    wanted = sorted(set(pairs))
    if not wanted:
        return {}
    found: dict[tuple[str, str], IdempotencyRow] = {}
    for where in pair_filters(IdempotencyRow.owner_id, IdempotencyRow.key, wanted):
        for row in await session.scalars(select(IdempotencyRow).where(where)):
            found[(row.owner_id, row.key)] = row
    return found
