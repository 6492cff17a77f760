"""SQLite through aiosqlite, one trip to its thread a statement.

aiosqlite runs each connection's calls on a thread of its own; every call is a trip
there and back (a queue, a wake-up, the answer handed to the event loop), about 40 µs of
CPU on the 2-core machine. SQLAlchemy's cursor for it makes a trip to create the cursor,
one to execute, one to fetch the rows and one to close it: three or four a statement,
most of the CPU a small write transaction costs. :class:`OneTripCursor` does all four
in one function on the connection's thread, and hands back what a DB-API cursor tells
afterwards (the rows, their description, the row count, the last row id).

Everything else is SQLAlchemy's aiosqlite adapter as it is: its connection (commit,
rollback, the statement lock), its server-side cursor for streamed results, its
translation of the driver's errors. :data:`ONE_TRIP_DBAPI` is passed to
``create_async_engine`` as the dialect's ``module`` for this process's SQLite engines.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Callable
from typing import Any

import aiosqlite
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT

_Outcome = tuple[Any, int, int | None, list[Any] | None]
"""What a statement left: description, row count, last row id, and rows (or ``None``)."""


class OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A DB-API cursor whose statements each make one trip to the connection's thread."""

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: AsyncAdapt_dbapi_connection) -> None:
        # No aiosqlite cursor: each statement makes (and closes) its own sqlite3 cursor
        # on the connection's thread.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    def close(self) -> None:
        self._rows.clear()

    async def _async_soft_close(self) -> None:
        """Nothing to close: the statement's sqlite3 cursor was closed on its thread."""

    def setinputsizes(self, *inputsizes: Any) -> None:
        """As sqlite3's: nothing to do."""

    async def _execute_async(self, operation: Any, parameters: Any) -> None:
        if parameters is None:
            await self._run(lambda cursor: cursor.execute(operation))
        else:
            await self._run(lambda cursor: cursor.execute(operation, parameters))

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> None:
        await self._run(lambda cursor: cursor.executemany(operation, seq_of_parameters))

    async def _run(self, statement: Callable[[sqlite3.Cursor], object]) -> None:
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]

        def on_its_thread() -> _Outcome:
            cursor = connection._conn.cursor()
            try:
                statement(cursor)
                description = cursor.description
                rows = cursor.fetchall() if description else None
                return description, cursor.rowcount, cursor.lastrowid, rows
            finally:
                cursor.close()

        # aiosqlite's own way onto its thread, as SQLAlchemy's adapter also uses it.
        async with self._adapt_connection._execute_mutex:
            outcome: _Outcome = await connection._execute(on_its_thread)  # type: ignore[no-untyped-call]
        self._description, self._rowcount, self._lastrowid, rows = outcome
        if rows is not None:
            self._rows = collections.deque(rows)


class _OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor


class OneTripDbapi(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite DB-API adapter, its connections making :class:`OneTripCursor`."""

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        adapted = super().connect(*arg, **kw)
        return _OneTripConnection(self, adapted._connection)


ONE_TRIP_DBAPI = OneTripDbapi(aiosqlite, sqlite3)
"""The ``module`` of this process's SQLite engines."""
