"""Many new rows of one table, written around the ORM inside the session's transaction.

The market writer adds hundreds of rows per transaction (orders, trades, journal
entries). Given to the session as ORM objects or as a list of dicts to an ORM
``insert``, each row costs its share of the unit of work or of the ORM's bulk
path (a few percent of the batch route for its trades and journal entries); here
the ``INSERT`` is compiled once per table, columns and dialect, and each value
is bound by its column's type exactly as a statement would bind it, so what is
stored is the same. On PostgreSQL :func:`insert_many` sends the rows with
``COPY`` (:mod:`wattx.store.copy`) instead.

These go straight to the driver: they do not flush the session first. A caller
writes rows that depend on nothing the session holds unflushed (no foreign key
to a pending ORM row), or flushes before.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ClauseElement, Table, insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler

from wattx.store.copy import copies, copy_records

Record = Sequence[Any]
"""One row's values, in the order of the columns given with it."""


async def insert_many(
    session: AsyncSession, table: Table, columns: Sequence[str], records: Sequence[Record]
) -> None:
    """Insert ``records`` into ``table`` in the session's transaction: ``COPY`` on
    PostgreSQL, one driver-level ``INSERT`` of many rows elsewhere."""
    if not records:
        return
    names = tuple(columns)
    if copies(session):
        _, processors = _statement(session.get_bind().dialect, table, names)
        await copy_records(session, table.name, names, _bound(records, processors))
        return
    await session.run_sync(lambda sync: driver_insert(sync.connection(), table, names, records))


def driver_insert(
    connection: Connection, table: Table, columns: tuple[str, ...], records: Sequence[Record]
) -> None:
    """One ``INSERT`` of many rows through ``connection``'s driver (no ORM event runs)."""
    if not records:
        return
    sql, processors = _statement(connection.dialect, table, columns)
    connection.exec_driver_sql(sql, _bound(records, processors))


_Processors = tuple[tuple[int, Callable[[Any], Any]], ...]
"""Bind processors by the index of their column in a record."""


def _bound(records: Sequence[Record], processors: _Processors) -> list[tuple[Any, ...]]:
    """``records`` with each value bound by its column's type, as a statement binds it.

    By the value's identity (``records`` hold every value until this returns): the same
    object is bound once (a transaction's rows share their time), and no two values
    merely equal share a result."""
    if not processors:
        return [tuple(record) for record in records]
    bound: dict[tuple[int, int], object] = {}
    out = []
    for record in records:
        values = list(record)
        for index, process in processors:
            value = values[index]
            key = (index, id(value))
            if key not in bound:
                bound[key] = process(value)
            values[index] = bound[key]
        out.append(tuple(values))
    return out


@functools.lru_cache(maxsize=64)
def _statement(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> tuple[str, _Processors]:
    """The ``INSERT`` of ``columns`` as the driver takes it, and the bind processor of
    each column (by its index in ``columns``) that has one."""
    compiled = insert(table).compile(dialect=dialect, column_keys=list(columns))
    if not compiled.positional or tuple(compiled.positiontup or ()) != columns:
        raise RuntimeError(f"no positional insert of {table.name}'s columns on {dialect.name}")
    processors = []
    for index, name in enumerate(columns):
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((index, process))
    return str(compiled), tuple(processors)


@functools.lru_cache(maxsize=64)
def driver_sql(dialect: Dialect, statement: ClauseElement, parameters: tuple[str, ...]) -> str:
    """``statement`` (built once, a module's constant) as ``dialect``'s driver takes it, for
    ``exec_driver_sql`` with values in the order ``parameters`` names its bound parameters.

    For many rows of a statement whose values need no bind processing (text, integers):
    the driver's own many-row execution, without SQLAlchemy building each row's
    parameters."""
    compiled = statement.compile(dialect=dialect)
    if (
        not isinstance(compiled, SQLCompiler)
        or not compiled.positional
        or tuple(compiled.positiontup or ()) != parameters
    ):
        raise RuntimeError(f"no positional statement with {parameters} on {dialect.name}")
    return str(compiled)
