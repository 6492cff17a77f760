"""The ``INSERT`` construct with ``ON CONFLICT`` of a session's database.

PostgreSQL's and SQLite's dialects each have their own (``on_conflict_do_nothing``,
``on_conflict_do_update``); the statements built from either are the same SQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session


def dialect_insert(session: AsyncSession | Session) -> Any:
    """``insert`` of the session's dialect, for a statement with ``ON CONFLICT``."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
