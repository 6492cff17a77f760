"""The ``INSERT`` construct with ``ON CONFLICT`` of a session's database.

PostgreSQL's and SQLite's dialects each have their own (``on_conflict_do_nothing``,
``on_conflict_do_update``); the statements built from either are the same SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from wattx.store.dialect import is_postgres


def dialect_insert(session: AsyncSession | Session) -> Any:
    """``insert`` of the session's dialect, for a statement with ``ON CONFLICT``."""
    return pg_insert if is_postgres(session) else sqlite_insert


def adding_upsert(
    session: AsyncSession | Session, table: Table, keys: Sequence[str], summed: Sequence[str]
) -> Any:
    """``INSERT`` rows of ``table``, or add their ``summed`` columns to the row already
    under the same ``keys``: an increment that concurrent writers cannot lose (a running
    total). Executed with its rows; callers give them in key order, so that two writers of
    several rows take their locks in the same order and never deadlock."""
    statement = dialect_insert(session)(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c[key] for key in keys],
        set_={column: table.c[column] + statement.excluded[column] for column in summed},
    )
