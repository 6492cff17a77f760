"""The audit log: every control-plane and admin action, append-only and hash-chained.

Use cases write their entry with :func:`wattx.store.audit.append` inside their
own transaction, so an action and its entry commit together; refused attempts
(a wrong signature, a spent token) are recorded on their own by
:meth:`AuditService.record`. :meth:`AuditService.verify` walks the chain and
names the first entry that was edited or removed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from wattx.domain.audit import ChainCheck, verify_chain
from wattx.domain.epochs import EpochClock
from wattx.store import audit as repo
from wattx.store.db import Database
from wattx.store.models_nodes import AuditLogRow


class AuditService:
    def __init__(self, db: Database, clock: EpochClock) -> None:
        self._db = db
        self._clock = clock

    async def record(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        source: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        """Record an entry in a transaction of its own (an attempt that changed nothing)."""
        async with self._db.write() as session:
            await self.append(
                session,
                actor=actor,
                action=action,
                target=target,
                source=source,
                before=before,
                after=after,
                at=at,
            )

    async def append(
        self,
        session: AsyncSession,
        *,
        actor: str,
        action: str,
        target: str,
        source: str,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> None:
        """Append an entry in the caller's transaction: the action and its entry commit
        together, or neither does."""
        await repo.append(
            session,
            lock=self._db.locks_rows,
            at=at or self._clock.now(),
            actor=actor,
            action=action,
            target=target,
            source=source,
            before=before,
            after=after,
        )

    async def entries(
        self, *, action: str | None, target: str | None, limit: int, offset: int
    ) -> list[AuditLogRow]:
        async with self._db.read() as session:
            return await repo.list_entries(
                session, action=action, target=target, limit=limit, offset=offset
            )

    async def verify(self) -> ChainCheck:
        async with self._db.read() as session:
            head = await repo.head(session)
            collected = [record async for record in repo.records(session)]
        return verify_chain(
            collected,
            head_seq=None if head is None else head.seq,
            head_hash=None if head is None else head.hash,
        )
