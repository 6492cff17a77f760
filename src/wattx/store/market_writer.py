"""The market writer's election and inbox in PostgreSQL (docs/operations.md, "Scaling out").

* :class:`WriterLink`: one dedicated connection per process, kept for its
  lifetime. It tries the market's session-level advisory lock (whoever holds it
  is the market writer; PostgreSQL frees it when the connection closes, e.g. on
  ``kill -9``) and listens for the inbox's notifications.
* The fencing token: the new writer raises ``market_writer.term`` once it holds
  the lock, and every market write transaction reads it ``FOR SHARE``
  (:func:`check_term`). The raise waits for the former writer's open
  transactions, and any of its later ones sees another term and rolls back.
* The inbox (``market_inbox``): replicas that are not the writer add order
  submissions there and are told (``NOTIFY``) when the writer has answered them
  in the transaction that placed the orders.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import cast

import asyncpg
from sqlalchemy import Table, bindparam, delete, insert, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.models import MarketInboxRow, MarketWriterRow

SCOPE = "market"
"""What one writer writes: the whole market (every zone), one engine."""

LOCK_KEY = int.from_bytes(hashlib.sha256(b"wattx:market-writer").digest()[:8], "big", signed=True)
"""The advisory lock key of the market writer (advisory locks are per database)."""

INBOX_CHANNEL = "wattx_market_inbox"
"""NOTIFY channel: a submission was added to the inbox (payload: its id)."""
DONE_CHANNEL = "wattx_market_done"
"""NOTIFY channel: the writer answered inbox rows (payload: their ids, comma-separated)."""
RELOAD_CHANNEL = "wattx_market_reload"
"""NOTIFY channel: zones changed on a replica that is not the writer; the writer reloads."""

PENDING = "pending"
DONE = "done"
ABANDONED = "abandoned"

_INBOX = cast(Table, MarketInboxRow.__table__)


class WriterLink:
    """The process's own connection for the writer lock and the inbox notifications."""

    def __init__(
        self,
        database_url: str,
        *,
        on_notify: Callable[[str, str], None],
        on_lost: Callable[[], None],
    ) -> None:
        self._dsn = make_url(database_url).set(drivername="postgresql")
        self._on_notify = on_notify
        self._on_lost = on_lost
        self._conn: asyncpg.Connection | None = None
        self.holds_lock = False

    @property
    def is_open(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def open(self) -> None:
        url = self._dsn
        conn = await asyncpg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            database=url.database,
            timeout=10,
        )
        conn.add_termination_listener(self._terminated)
        for channel in (INBOX_CHANNEL, DONE_CHANNEL, RELOAD_CHANNEL):
            await conn.add_listener(channel, self._notified)
        self._conn = conn
        self.holds_lock = False

    async def try_lock(self) -> bool:
        """Take the writer lock if nobody holds it (never waits)."""
        conn = self._require()
        got = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY))
        self.holds_lock = got
        return got

    async def check(self) -> None:
        """One round trip: raises if the connection (and with it the lock) is gone."""
        await self._require().fetchval("SELECT 1")

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        self.holds_lock = False
        if conn is not None and not conn.is_closed():
            conn.terminate()

    def _require(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            raise ConnectionError("the writer link is not open")
        return self._conn

    def _terminated(self, _conn: object) -> None:
        held, self.holds_lock = self.holds_lock, False
        if held:
            self._on_lost()

    def _notified(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        self._on_notify(channel, payload)


# the fencing token ---------------------------------------------------------------------


async def raise_term(session: AsyncSession, holder: str, at: datetime) -> int:
    """Make the caller the writer of the next term (waits for the former writer's open
    transactions) and return the term."""
    term = await session.scalar(
        update(MarketWriterRow)
        .where(MarketWriterRow.scope == SCOPE)
        .values(term=MarketWriterRow.term + 1, holder=holder, since=at)
        .returning(MarketWriterRow.term)
    )
    if term is None:
        raise LookupError("market_writer has no row: run wattx db upgrade")
    return int(term)


async def check_term(session: AsyncSession) -> tuple[int, str] | None:
    """The current term and its holder, read ``FOR SHARE`` (a new writer's raise waits
    for this transaction to end)."""
    row = (
        await session.execute(
            select(MarketWriterRow.term, MarketWriterRow.holder)
            .where(MarketWriterRow.scope == SCOPE)
            .with_for_update(read=True)
        )
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))


async def current_writer(session: AsyncSession) -> tuple[int, str] | None:
    """The current term and its holder (a plain read)."""
    row = (
        await session.execute(
            select(MarketWriterRow.term, MarketWriterRow.holder).where(
                MarketWriterRow.scope == SCOPE
            )
        )
    ).first()
    return None if row is None else (int(row[0]), str(row[1]))


async def notify(session: AsyncSession, channel: str, payload: str) -> None:
    """Send ``payload`` on ``channel`` when the transaction commits."""
    await session.execute(
        text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload}
    )


# the inbox -----------------------------------------------------------------------------


async def add_many(
    session: AsyncSession, submissions: Sequence[tuple[str, str]], at: datetime
) -> list[int]:
    """Add pending rows, one per ``(owner_id, payload)``, in one statement; their ids in
    the same order. ``at``: the machine's time (:func:`sweep` counts from it)."""
    if not submissions:
        return []
    ids = await session.scalars(
        insert(_INBOX).returning(_INBOX.c.id, sort_by_parameter_order=True),
        [
            {"owner_id": owner, "payload": payload, "status": PENDING, "created_at": at}
            for owner, payload in submissions
        ],
    )
    return list(ids)


async def pending(
    session: AsyncSession, *, excluding: Iterable[int], limit: int
) -> list[MarketInboxRow]:
    """The oldest pending rows, in arrival order, but those the writer has taken already."""
    query = (
        select(MarketInboxRow)
        .where(MarketInboxRow.status == PENDING)
        .order_by(MarketInboxRow.id)
        .limit(limit)
    )
    skip = list(excluding)
    if skip:
        query = query.where(MarketInboxRow.id.not_in(skip))
    return list(await session.scalars(query))


async def lock_pending(session: AsyncSession, ids: Sequence[int]) -> set[int]:
    """Of ``ids``, those still pending, locked until the transaction ends (a sender's
    :func:`abandon` waits for it)."""
    if not ids:
        return set()
    query = (
        select(MarketInboxRow.id)
        .where(MarketInboxRow.id.in_(list(ids)), MarketInboxRow.status == PENDING)
        .with_for_update()
    )
    return set(await session.scalars(query))


_ANSWER = (
    update(_INBOX)
    .where(_INBOX.c.id == bindparam("inbox_id"))
    .values(status=DONE, response=bindparam("answer"), done_at=bindparam("at"))
)


async def answer(session: AsyncSession, answers: dict[int, str], at: datetime) -> None:
    """Record the writer's answers (inside the transaction that placed the orders) and
    tell the senders when it commits."""
    if not answers:
        return
    # One statement for all (executemany): the writer's transaction holds the market's
    # locks, and a statement per row was a round trip per forwarded request in it.
    await session.execute(
        _ANSWER,
        [{"inbox_id": i, "answer": response, "at": at} for i, response in answers.items()],
    )
    await notify(session, DONE_CHANNEL, ",".join(str(i) for i in answers))


async def answered(session: AsyncSession, ids: Iterable[int]) -> set[int]:
    """Of ``ids``, those the writer has answered."""
    wanted = list(ids)
    if not wanted:
        return set()
    query = select(MarketInboxRow.id).where(
        MarketInboxRow.id.in_(wanted), MarketInboxRow.status == DONE
    )
    return set(await session.scalars(query))


async def abandon(session: AsyncSession, inbox_id: int) -> bool:
    """Withdraw a row nobody answered yet; False if the writer answered it first."""
    result = await session.execute(
        update(MarketInboxRow)
        .where(MarketInboxRow.id == inbox_id, MarketInboxRow.status == PENDING)
        .values(status=ABANDONED)
    )
    return bool(getattr(result, "rowcount", 0))


async def answers(session: AsyncSession, ids: Sequence[int]) -> dict[int, str]:
    """The writer's answers to these rows; a row without an answer is left out.

    A read: the rows stay until :func:`sweep` (a delete per answer was a commit per
    group of forwarded requests, on the sender's way to its callers).
    """
    if not ids:
        return {}
    found = await session.execute(
        select(_INBOX.c.id, _INBOX.c.response).where(
            _INBOX.c.id.in_(list(ids)), _INBOX.c.status == DONE
        )
    )
    return {inbox_id: str(response) for inbox_id, response in found}


async def sweep(session: AsyncSession, created_before: datetime) -> int:
    """Delete answered and withdrawn rows added before ``created_before``; how many.

    Pending rows stay whatever their age: the writer places them (their sender may
    be gone, the request is not), and once answered they go with a later sweep.
    """
    result = await session.execute(
        delete(_INBOX).where(
            _INBOX.c.status.in_((DONE, ABANDONED)), _INBOX.c.created_at < created_before
        )
    )
    return int(getattr(result, "rowcount", 0))


async def forget(session: AsyncSession, inbox_id: int) -> None:
    await session.execute(delete(MarketInboxRow).where(MarketInboxRow.id == inbox_id))
