"""Running counts of the deliveries in each state (``delivery_state_counts``).

The operator's deliveries page shows how many deliveries are in each state; counted with a
``GROUP BY`` over every delivery ever made, it cost more every epoch. Whoever creates a
delivery or changes its state tells :func:`count_moves` in the same transaction; the moves
are added up in the session and written in one statement just before the transaction
commits, each state's row in state order, so two transactions changing the counts cannot
deadlock on them, and hold their rows only for that last statement. A rollback forgets
them with the rest of the transaction. Moves are not taken inside a savepoint, whose
rollback would have to forget them and not the rest (no writer of deliveries uses one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sqlalchemy import Table, event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from wattx.store.models_devices import DeliveryStateCountRow
from wattx.store.upsert import adding_upsert

_MOVES = "wattx.delivery_states.moves"


def count_moves(session: AsyncSession, moves: Iterable[tuple[str | None, str | None]]) -> None:
    """Deliveries that moved from one state to another in this transaction: ``(None, s)``
    for one created in state ``s``, ``(s, t)`` for one moved from ``s`` to ``t``."""
    if session.in_nested_transaction():
        raise RuntimeError("delivery moves are not counted inside a savepoint")
    counts: Counter[str] = session.info.setdefault(_MOVES, Counter())
    for before, after in moves:
        if before == after:
            continue
        if before is not None:
            counts[before] -= 1
        if after is not None:
            counts[after] += 1


async def state_counts(session: AsyncSession) -> dict[str, int]:
    """How many deliveries are in each state (states with none left out)."""
    rows = await session.execute(
        select(DeliveryStateCountRow.state, DeliveryStateCountRow.count).where(
            DeliveryStateCountRow.count != 0
        )
    )
    return {state: int(count) for state, count in rows.all()}


@event.listens_for(Session, "before_commit")
def _write_counts(session: Session) -> None:
    counts: Counter[str] | None = session.info.pop(_MOVES, None)
    changes = sorted((state, n) for state, n in (counts or {}).items() if n)
    if not changes:
        return
    table: Table = DeliveryStateCountRow.__table__  # type: ignore[assignment]
    # The session's own connection: no ORM event runs again for this statement.
    session.connection().execute(
        adding_upsert(session, table, ("state",), ("count",)),
        [{"state": state, "count": n} for state, n in changes],
    )


@event.listens_for(Session, "after_soft_rollback")
def _forget_counts(session: Session, _previous: SessionTransaction) -> None:
    session.info.pop(_MOVES, None)
