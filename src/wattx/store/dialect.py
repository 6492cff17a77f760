"""Which database a session talks to, where a statement differs between them."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session


def is_postgres(session: AsyncSession | Session) -> bool:
    """Whether the session's database is PostgreSQL (else SQLite)."""
    return bool(session.get_bind().dialect.name == "postgresql")
