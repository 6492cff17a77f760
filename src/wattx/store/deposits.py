"""Repository of deposit requests (see ``models_deposits``)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.models_deposits import DepositRequestRow


async def add(session: AsyncSession, row: DepositRequestRow) -> None:
    session.add(row)
    await session.flush()


async def get(
    session: AsyncSession, request_id: str, *, for_update: bool
) -> DepositRequestRow | None:
    query = select(DepositRequestRow).where(DepositRequestRow.id == request_id)
    if for_update:
        query = query.with_for_update()
    found: DepositRequestRow | None = (await session.execute(query)).scalar_one_or_none()
    return found


async def pending_count(session: AsyncSession, user_id: str) -> int:
    query = select(func.count()).where(
        DepositRequestRow.user_id == user_id, DepositRequestRow.status == "pending"
    )
    return int((await session.execute(query)).scalar_one())


async def listed(
    session: AsyncSession, *, user_id: str | None, status: str | None, limit: int, offset: int
) -> list[DepositRequestRow]:
    """Newest first."""
    query = select(DepositRequestRow)
    if user_id is not None:
        query = query.where(DepositRequestRow.user_id == user_id)
    if status is not None:
        query = query.where(DepositRequestRow.status == status)
    query = query.order_by(DepositRequestRow.created_at.desc(), DepositRequestRow.id)
    return list((await session.execute(query.limit(limit).offset(offset))).scalars())
