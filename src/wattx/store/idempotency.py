"""Repository of stored responses to mutations sent with an ``Idempotency-Key``."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.models import IdempotencyRow


async def stored_response(session: AsyncSession, owner_id: str, key: str) -> IdempotencyRow | None:
    query = select(IdempotencyRow).where(
        IdempotencyRow.owner_id == owner_id, IdempotencyRow.key == key
    )
    return (await session.scalars(query)).first()
