"""Bulk inserts with PostgreSQL's ``COPY``, inside the session's transaction.

``COPY ... FROM STDIN (binary)`` sends many rows in one round trip with no
statement to parse and no parameters to bind one by one, several times faster
than a multi-row ``INSERT`` for a thousand rows. It goes around SQLAlchemy to
the driver, so this module keeps what the statement path would give: the rows
belong to the session's transaction, and a failure is raised as the same
SQLAlchemy exception (so a constraint violation is an ``IntegrityError``, and a
storage failure is told from a defect by its SQLSTATE, as for any statement).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.dialect import is_postgres


def copies(session: AsyncSession) -> bool:
    """Whether the session's database takes :func:`copy_records` (PostgreSQL)."""
    return is_postgres(session)


async def copy_records(
    session: AsyncSession,
    table: str,
    columns: Sequence[str],
    records: Iterable[Sequence[Any]],
) -> None:
    """Insert ``records`` (values in ``columns`` order) into ``table`` on PostgreSQL."""
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert isinstance(driver, asyncpg.Connection)
    if not driver.is_in_transaction():
        # The driver's adapter sends BEGIN with the session's first statement; COPY goes
        # around the adapter, so without one before it, it would commit on its own. A Core
        # statement on the connection: an ORM one would first have the session's hooks
        # write what the caller is about to copy (wattx.store.orders).
        await connection.exec_driver_sql("SELECT 1")
    statement = f"COPY {table} FROM STDIN (binary)"
    try:
        await driver.copy_records_to_table(table, columns=list(columns), records=records)
    except asyncpg.IntegrityConstraintViolationError as exc:
        raise sa_exc.IntegrityError(statement, None, exc) from exc
    except asyncpg.PostgresError as exc:
        raise sa_exc.DBAPIError(statement, None, exc) from exc
    except (asyncpg.InterfaceError, OSError) as exc:
        raise sa_exc.InterfaceError(statement, None, exc) from exc
