"""Repository of node incentives (see ``models_incentives``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.models_incentives import IncentivePeriodRow, IncentiveSlashRow, NodeActivityRow
from wattx.store.upsert import dialect_insert


async def activity(
    session: AsyncSession, node_id: str, period: int, interval_s: int, *, lock: bool
) -> NodeActivityRow:
    """The node's row for the period, created (all zero) if missing; locked when ``lock``.
    Created with ON CONFLICT DO NOTHING, so two writers never collide."""
    values = _zero(node_id, period, interval_s)
    insert = dialect_insert(session)
    await session.execute(insert(NodeActivityRow).values(**values).on_conflict_do_nothing())
    query = select(NodeActivityRow).where(
        NodeActivityRow.node_id == node_id, NodeActivityRow.period == period
    )
    if lock:
        query = query.with_for_update()
    return (await session.scalars(query.execution_options(populate_existing=True))).one()


async def up_slots_of(
    session: AsyncSession, period: int, intervals: dict[str, int], *, lock: bool
) -> dict[str, tuple[int, int]]:
    """For many nodes of one period at once: node id → (``up_slots``, ``last_slot``) of
    its row, created (all zero, with the node's heartbeat interval) where missing.

    One select for all, in node id order (two writers never deadlock); only the nodes
    it did not find are inserted (one executemany of a statement compiled once, a row
    another writer made meanwhile left alone) and read again. A heartbeat round of a
    period whose rows exist, which is nearly every round, is one select."""
    if not intervals:
        return {}
    found = await _up_slots(session, period, list(intervals), lock=lock)
    missing = sorted(set(intervals) - set(found))
    if missing:
        insert = dialect_insert(session)
        await session.execute(
            insert(cast(Table, NodeActivityRow.__table__)).on_conflict_do_nothing(),
            [_zero(node_id, period, intervals[node_id]) for node_id in missing],
        )
        found.update(await _up_slots(session, period, missing, lock=lock))
    return dict(sorted(found.items()))


async def _up_slots(
    session: AsyncSession, period: int, node_ids: list[str], *, lock: bool
) -> dict[str, tuple[int, int]]:
    query = (
        select(NodeActivityRow.node_id, NodeActivityRow.up_slots, NodeActivityRow.last_slot)
        .where(NodeActivityRow.period == period, NodeActivityRow.node_id.in_(node_ids))
        .order_by(NodeActivityRow.node_id)
    )
    if lock:
        query = query.with_for_update()
    return {r.node_id: (r.up_slots, r.last_slot) for r in (await session.execute(query)).all()}


async def set_up_slots(
    session: AsyncSession, period: int, slots: dict[str, tuple[int, int]]
) -> None:
    """Write node id → (``up_slots``, ``last_slot``) of one period, by primary key in one
    executemany."""
    if slots:
        await session.execute(
            _UP_SLOTS_UPDATE,
            [
                {"node": node_id, "of_period": period, "up_slots": up, "last_slot": last}
                for node_id, (up, last) in sorted(slots.items())
            ],
        )


_ACTIVITY = cast(Table, NodeActivityRow.__table__)
# A Core executemany (each heartbeat round writes one): the ORM's bulk update by primary
# key costs about twice the CPU for the same statement.
_UP_SLOTS_UPDATE = update(_ACTIVITY).where(
    _ACTIVITY.c.node_id == bindparam("node"), _ACTIVITY.c.period == bindparam("of_period")
)


def _zero(node_id: str, period: int, interval_s: int) -> dict[str, object]:
    return {
        "node_id": node_id,
        "period": period,
        "interval_s": interval_s,
        "up_slots": 0,
        "last_slot": -1,
        "readings": 0,
        "commands_done": 0,
        "commands_failed": 0,
        "tampered_batches": 0,
        "reward": None,
    }


async def period_activity(session: AsyncSession, period: int) -> Sequence[NodeActivityRow]:
    query = select(NodeActivityRow).where(NodeActivityRow.period == period)
    return (await session.scalars(query.order_by(NodeActivityRow.node_id))).all()


async def node_activity(
    session: AsyncSession, node_id: str, *, limit: int
) -> Sequence[NodeActivityRow]:
    query = (
        select(NodeActivityRow)
        .where(NodeActivityRow.node_id == node_id)
        .order_by(NodeActivityRow.period.desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def reported_period(session: AsyncSession, period: int) -> IncentivePeriodRow | None:
    return await session.get(IncentivePeriodRow, period)


async def last_reported(session: AsyncSession) -> int | None:
    query = select(IncentivePeriodRow.period).order_by(IncentivePeriodRow.period.desc()).limit(1)
    return (await session.scalars(query)).first()


async def add_period(
    session: AsyncSession, period: int, nodes: int, paid: int, tx_hash: str, at: datetime
) -> None:
    session.add(
        IncentivePeriodRow(period=period, nodes=nodes, paid=paid, tx_hash=tx_hash, reported_at=at)
    )


async def add_slash(
    session: AsyncSession,
    *,
    slash_id: int,
    node_id: str,
    period: int,
    reason: str,
    amount: int,
    tx_hash: str,
    at: datetime,
) -> None:
    session.add(
        IncentiveSlashRow(
            slash_id=slash_id,
            node_id=node_id,
            period=period,
            reason=reason,
            amount=amount,
            tx_hash=tx_hash,
            created_at=at,
        )
    )


async def slashes_of(session: AsyncSession, node_id: str) -> Sequence[IncentiveSlashRow]:
    query = select(IncentiveSlashRow).where(IncentiveSlashRow.node_id == node_id)
    return (await session.scalars(query.order_by(IncentiveSlashRow.slash_id))).all()


async def slash(session: AsyncSession, slash_id: int) -> IncentiveSlashRow | None:
    return await session.get(IncentiveSlashRow, slash_id)


async def slashed_in(session: AsyncSession, period: int) -> set[tuple[str, str]]:
    """(node, reason) pairs already slashed for ``period``."""
    query = select(IncentiveSlashRow.node_id, IncentiveSlashRow.reason).where(
        IncentiveSlashRow.period == period
    )
    return {(n, r) for n, r in (await session.execute(query)).all()}


async def periods_between(session: AsyncSession, after: int, before: int) -> list[int]:
    """Periods with activity, ``after < period < before``, oldest first."""
    query = (
        select(NodeActivityRow.period)
        .distinct()
        .where(NodeActivityRow.period > after, NodeActivityRow.period < before)
        .order_by(NodeActivityRow.period)
    )
    return list((await session.scalars(query)).all())


async def open_slashes(session: AsyncSession) -> Sequence[IncentiveSlashRow]:
    query = select(IncentiveSlashRow).where(IncentiveSlashRow.settled_at.is_(None))
    return (await session.scalars(query.order_by(IncentiveSlashRow.slash_id))).all()


async def mark_settled(session: AsyncSession, slash_ids: Sequence[int], at: datetime) -> None:
    for slash_id in slash_ids:
        row = await session.get(IncentiveSlashRow, slash_id)
        if row is not None and row.settled_at is None:
            row.settled_at = at
