"""Repository of users, login sessions, refresh tokens and wallet nonces."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.models import AuthSessionRow, RefreshTokenRow, UserRow, WalletNonceRow


async def user_by_id(session: AsyncSession, user_id: str) -> UserRow | None:
    return await session.get(UserRow, user_id)


async def user_by_email(session: AsyncSession, email: str) -> UserRow | None:
    return (await session.scalars(select(UserRow).where(UserRow.email == email))).first()


async def user_by_wallet(session: AsyncSession, address: str) -> UserRow | None:
    query = select(UserRow).where(UserRow.wallet_address == address)
    return (await session.scalars(query)).first()


async def list_users(
    session: AsyncSession, *, status: str | None, limit: int, offset: int
) -> list[UserRow]:
    query = select(UserRow).order_by(UserRow.created_at, UserRow.id).limit(limit).offset(offset)
    if status is not None:
        query = query.where(UserRow.status == status)
    return list(await session.scalars(query))


async def session_by_id(session: AsyncSession, session_id: str) -> AuthSessionRow | None:
    return await session.get(AuthSessionRow, session_id)


async def refresh_token_for_update(
    session: AsyncSession, token_hash: str, *, lock: bool
) -> RefreshTokenRow | None:
    query = select(RefreshTokenRow).where(RefreshTokenRow.token_hash == token_hash)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).first()


async def revoke_session(
    session: AsyncSession, session_id: str, *, at: datetime, reason: str
) -> None:
    await session.execute(
        update(AuthSessionRow)
        .where(AuthSessionRow.id == session_id, AuthSessionRow.revoked_at.is_(None))
        .values(revoked_at=at, revoked_reason=reason)
    )


async def nonce_for_update(
    session: AsyncSession, nonce: str, *, lock: bool
) -> WalletNonceRow | None:
    query = select(WalletNonceRow).where(WalletNonceRow.nonce == nonce)
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query)).first()
