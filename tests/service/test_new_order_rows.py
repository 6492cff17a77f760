"""New orders a write transaction creates are written before its next statement and at
its commit; one changed after it was written is updated, and only such ones
(wattx.store.orders: hold_order_rows, write_new_rows)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event, select

from wattx.domain import Order, Side
from wattx.store import Database
from wattx.store import orders as order_repo
from wattx.store.models import OrderRow

AT = datetime(2026, 12, 3, 21, 0, tzinfo=UTC)


def _row(order_id: str) -> order_repo.NewOrderRow:
    order = Order(
        id=order_id,
        owner="owner-new-rows",
        side=Side.BUY,
        qty_wh=1_000,
        limit_price=100_000,
        zone="main",
        epoch_id=1,
        created_at=AT,
        seq=1,
    )
    return order_repo.new_order_row(order, escrow_asset="credit", escrow=100_000, at=AT)


async def test_rows_changed_after_writing_are_updated_and_only_they(database_url: str) -> None:
    db = Database(database_url)
    updates: list[int] = []

    def count(_conn: object, _cursor: object, statement: str, params: object, *_: object) -> None:
        if statement.lstrip().lower().startswith("update orders"):
            updates.append(len(params) if isinstance(params, list) else 1)

    event.listen(db.write_engine.sync_engine, "before_cursor_execute", count)
    try:
        async with db.write() as session:
            first, second = _row("new-rows-1"), _row("new-rows-2")
            order_repo.hold_order_rows(session, [first, second])
            # Any statement writes them first.
            assert {r.id for r in await session.scalars(select(OrderRow))} == {
                "new-rows-1",
                "new-rows-2",
            }
            first.filled_wh, first.status, first.escrow_remaining = 400, "partially_filled", 60_000
            third = _row("new-rows-3")
            order_repo.hold_order_rows(session, [third])
            await order_repo.write_new_rows(session)  # COPY on PostgreSQL
            assert updates == [1]  # the first row only
            third.cancelled_wh, third.status = 1_000, "cancelled"
        # The commit wrote the third row's change too, in its own update.
        assert updates == [1, 1]
        async with db.read() as session:
            stored = {r.id: r for r in await session.scalars(select(OrderRow))}
        assert (stored["new-rows-1"].filled_wh, stored["new-rows-1"].status) == (
            400,
            "partially_filled",
        )
        assert stored["new-rows-1"].escrow_remaining == 60_000
        assert (stored["new-rows-2"].filled_wh, stored["new-rows-2"].status) == (0, "open")
        assert (stored["new-rows-3"].cancelled_wh, stored["new-rows-3"].status) == (
            1_000,
            "cancelled",
        )
    finally:
        event.remove(db.write_engine.sync_engine, "before_cursor_execute", count)
        await db.dispose()
