"""The audit chain in the database: append under the head's row lock, read in order."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.domain.audit import GENESIS_HASH, AuditRecord, entry_hash
from wattx.store.models_nodes import AuditHeadRow, AuditLogRow

HEAD_ID = 1


async def append(
    session: AsyncSession,
    *,
    lock: bool,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    source: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditLogRow:
    """Add one entry at the end of the chain, in the caller's transaction.

    With ``lock`` (PostgreSQL) the head row is first inserted if missing with ``ON
    CONFLICT DO NOTHING`` and then read ``FOR UPDATE``, so the first two entries of a
    database, written at once, queue on the head instead of both inserting it (the
    loser's commit failed on the key). Without it (SQLite) the transaction already
    holds the database's write lock.
    """
    if lock:
        await session.execute(
            pg_insert(AuditHeadRow)
            .values(id=HEAD_ID, seq=0, hash=GENESIS_HASH)
            .on_conflict_do_nothing(index_elements=["id"])
        )
        head = (
            await session.scalars(
                select(AuditHeadRow).where(AuditHeadRow.id == HEAD_ID).with_for_update()
            )
        ).one()
    else:
        found = await session.get(AuditHeadRow, HEAD_ID)
        if found is None:
            found = AuditHeadRow(id=HEAD_ID, seq=0, hash=GENESIS_HASH)
            session.add(found)
        head = found
    seq = head.seq + 1
    digest = entry_hash(
        prev_hash=head.hash,
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        target=target,
        source=source,
        before=before,
        after=after,
    )
    row = AuditLogRow(
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        target=target,
        source=source,
        before=None if before is None else json.dumps(before, sort_keys=True, default=str),
        after=None if after is None else json.dumps(after, sort_keys=True, default=str),
        prev_hash=head.hash,
        hash=digest,
    )
    session.add(row)
    head.seq = seq
    head.hash = digest
    return row


async def list_entries(
    session: AsyncSession,
    *,
    action: str | None,
    target: str | None,
    limit: int,
    offset: int,
) -> list[AuditLogRow]:
    query = select(AuditLogRow).order_by(AuditLogRow.seq.desc()).limit(limit).offset(offset)
    if action is not None:
        query = query.where(AuditLogRow.action == action)
    if target is not None:
        query = query.where(AuditLogRow.target == target)
    return list((await session.scalars(query)).all())


async def head(session: AsyncSession) -> AuditHeadRow | None:
    return await session.get(AuditHeadRow, HEAD_ID)


async def records(session: AsyncSession, *, chunk: int = 1000) -> AsyncIterator[AuditRecord]:
    """Every entry in ``seq`` order, as the pure chain check reads them."""
    stream = await session.stream_scalars(
        select(AuditLogRow).order_by(AuditLogRow.seq).execution_options(yield_per=chunk)
    )
    async for row in stream:
        yield to_record(row)


def to_record(row: AuditLogRow) -> AuditRecord:
    return AuditRecord(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        source=row.source,
        before=None if row.before is None else json.loads(row.before),
        after=None if row.after is None else json.loads(row.after),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )
