"""Engines and transactions.

Two ways into the database: :meth:`Database.read` (a plain transaction) and
:meth:`Database.write` (a write transaction). On SQLite a write transaction
starts with ``BEGIN IMMEDIATE`` so it holds the write lock from its first
statement: a read-then-write inside it can never be overtaken by another
writer. Writers in this process also queue on an asyncio lock first, so they
wait in order instead of polling SQLite's busy handler. On PostgreSQL writes
lock the rows they read with ``SELECT ... FOR UPDATE`` (see the repositories).

:func:`is_storage_failure` tells a failure of the database itself (unreachable,
connection lost, disk full) from a rule or a bug; the database remembers when a
write last failed that way, until a write commits again (readiness reports it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from wattx.private_files import touch_private_file
from wattx.store.sqlite_driver import ONE_TRIP_DBAPI

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # WAL + NORMAL: a commit survives a crash of the process (kill -9); only a
    # power loss can drop the last transactions.
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)

_SQLITE_READ_POOL = 20
"""Connections kept open for reads on SQLite (up to as many again open for a burst)."""

SQLITE_WRITER_PRAGMAS = (
    # The commit that crosses the WAL's size limit would otherwise copy the WAL
    # into the database and sync it before answering: a stall of every queued
    # writer. :meth:`Database.checkpoint` does that work beside the writer.
    "PRAGMA wal_autocheckpoint=0",
    # 64 MiB of pages (the default is 2 MiB): the indexes an order's insert touches at a
    # point of their own (its owner's orders, their client ids) outgrow 2 MiB early, and
    # every insert then reads a page back. With 20,000 owners and a million orders, an
    # order's insert and commit took 31.7 µs with the default and 24.3 µs with this
    # (bench/order_inserts.py; docs/operations.md, "Orders and trades keyed in time
    # order"). The writer is one connection.
    "PRAGMA cache_size=-65536",
)


class Database:
    """The engines of one database and the transactions the services use."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        if self.is_sqlite:
            _ensure_sqlite_dir(url)
            self.write_engine = _sqlite_engine(
                url, begin="BEGIN IMMEDIATE", echo=echo, pragmas=SQLITE_WRITER_PRAGMAS
            )
            # Readers keep their connections: each new aiosqlite connection is a new
            # thread and a new file handle, and with the default pool (5, overflow
            # closed on return) concurrent requests opened and closed them all the time.
            self.read_engine = _sqlite_engine(
                url, begin="BEGIN", echo=echo, pool_size=_SQLITE_READ_POOL, max_overflow=20
            )
        else:
            engine = create_async_engine(
                url,
                echo=echo,
                # Errors (and so logs) show the SQL, never the values bound to it.
                hide_parameters=True,
                pool_size=20,
                max_overflow=20,
                # An unreachable server fails a request in seconds, not a minute.
                pool_timeout=_PG_CONNECT_TIMEOUT_S,
                connect_args={"timeout": _PG_CONNECT_TIMEOUT_S},
            )
            self.write_engine = engine
            self.read_engine = engine
        self._write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)
        self._sqlite_writer = asyncio.Lock() if self.is_sqlite else None
        self._write_failed_at: float | None = None

    @property
    def sqlite_dir(self) -> Path | None:
        """The directory of the SQLite database file (its WAL lives there too)."""
        if not self.is_sqlite:
            return None
        database = make_url(self.url).database
        if not database or database == ":memory:":
            return None
        return Path(database).resolve().parent

    @property
    def locks_rows(self) -> bool:
        """Whether reads inside a write need ``FOR UPDATE`` (SQLite locks the whole file)."""
        return not self.is_sqlite

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction, committed when the block ends without an exception."""
        try:
            if self._sqlite_writer is not None:
                async with (
                    self._sqlite_writer,
                    self._write_sessions() as session,
                    session.begin(),
                ):
                    yield session
            else:
                async with self._write_sessions() as session, session.begin():
                    yield session
        except BaseException as exc:
            if is_storage_failure(exc):
                self._write_failed_at = time.monotonic()
            raise
        self._write_failed_at = None

    def write_failing(self, within_s: float) -> bool:
        """Whether a write failed on storage within the last ``within_s`` seconds and no
        write has committed since."""
        failed = self._write_failed_at
        return failed is not None and time.monotonic() - failed <= within_s

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._read_sessions() as session, session.begin():
            yield session

    async def checkpoint(self) -> None:
        """SQLite: copy committed WAL pages into the database file (a passive
        checkpoint, on its own connection: writers go on meanwhile). Writers in
        this process do not checkpoint themselves, so something must call this
        regularly (:class:`wattx.services.wal_checkpoint.WalCheckpointTask`).
        Nothing to do on PostgreSQL."""
        if not self.is_sqlite:
            return
        async with self.read_engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            await driver.execute("PRAGMA wal_checkpoint(PASSIVE)")

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()


_PG_CONNECT_TIMEOUT_S = 10

# SQLSTATE classes of a server that cannot serve: connection exception,
# insufficient resources (disk full, out of memory), operator intervention
# (shutdown, cannot connect now), system error (I/O).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57", "58")


_SQLITE_UNAVAILABLE_CODES = frozenset({5, 6, 7, 8, 10, 13, 14, 15})


def is_storage_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached or written just now, as
    opposed to a rule (a constraint) or a bug (bad SQL)."""
    if isinstance(exc, sa_exc.IntegrityError):
        return False
    sqlite_code = getattr(getattr(exc, "orig", None), "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        # SQLite says exactly what failed: only these are the storage's trouble
        # (busy, locked, no memory, read-only, I/O, full, cannot open); bad SQL is a bug.
        return sqlite_code & 0xFF in _SQLITE_UNAVAILABLE_CODES
    if isinstance(
        exc,
        sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.TimeoutError
        | sa_exc.DisconnectionError,
    ):
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or exc.statement is None:
            return True  # lost, or never had, a connection
        sqlstate = getattr(exc.orig, "sqlstate", None)
        return isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES
    # The driver's own socket errors when the server is not there at all.
    return isinstance(exc, ConnectionError | TimeoutError)


def _sqlite_engine(
    url: str, *, begin: str, echo: bool, pragmas: tuple[str, ...] = (), **pool: int
) -> AsyncEngine:
    engine = create_async_engine(
        url,
        echo=echo,
        hide_parameters=True,
        connect_args={"timeout": 30},
        # One trip to aiosqlite's thread a statement, not three or four (sqlite_driver).
        module=ONE_TRIP_DBAPI,
        **pool,
    )

    # pysqlite's own transaction handling is switched off so that SQLAlchemy
    # emits BEGIN itself, as SQLAlchemy's SQLite documentation recommends.
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (*SQLITE_PRAGMAS, *pragmas):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)

    return engine


def _ensure_sqlite_dir(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        # SQLite creates the WAL and shared-memory files with the database file's mode.
        touch_private_file(Path(database))
