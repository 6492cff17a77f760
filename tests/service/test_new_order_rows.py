"""New orders a write transaction creates are written before its next statement and at
its commit; one changed after it was written is updated, and only such ones
(wattx.store.orders: hold_order_rows, write_new_rows)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
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
            await session.scalars(select(OrderRow.id))
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
        # Every column as given, times included (bound by their column type).
        first_stored = stored["new-rows-2"]
        assert (first_stored.created_at, first_stored.updated_at) == (AT, AT)
        assert (first_stored.owner_id, first_stored.side, first_stored.kind) == (
            "owner-new-rows",
            "buy",
            "limit",
        )
        assert (first_stored.qty_wh, first_stored.limit_price, first_stored.epoch_id) == (
            1_000,
            100_000,
            1,
        )
        assert first_stored.client_order_id is None
        assert (first_stored.escrow_asset, first_stored.escrow_remaining) == ("credit", 100_000)
        assert (stored["new-rows-2"].filled_wh, stored["new-rows-2"].status) == (0, "open")
        assert (stored["new-rows-3"].cancelled_wh, stored["new-rows-3"].status) == (
            1_000,
            "cancelled",
        )
    finally:
        event.remove(db.write_engine.sync_engine, "before_cursor_execute", count)
        await db.dispose()


async def test_rows_handed_over_are_read_again_and_never_changed_unseen(
    database_url: str,
) -> None:
    """After write_new_rows (COPY on PostgreSQL) the transaction reads its new rows like
    stored ones; a change to a row object handed over refuses the commit."""
    db = Database(database_url)
    try:
        async with db.write() as session:
            row = _row("handed-1")
            order_repo.hold_order_rows(session, [row])
            await order_repo.write_new_rows(session)
            assert order_repo.held_order_row(session, "handed-1") is None
            found = await order_repo.orders_for_update(session, ["handed-1"], lock=db.locks_rows)
            stored = found["handed-1"]
            assert isinstance(stored, OrderRow)
            stored.filled_wh, stored.status = 1_000, "filled"
            assert order_repo.held_order_row(session, "handed-1") is stored
        async with db.read() as session:
            again = await session.get(OrderRow, "handed-1")
            assert again is not None
            assert (again.filled_wh, again.status) == (1_000, "filled")

        async def change_after_handing_over() -> None:
            async with db.write() as session:
                lost = _row("handed-2")
                order_repo.hold_order_rows(session, [lost])
                await order_repo.write_new_rows(session)
                lost.cancelled_wh, lost.status = 1_000, "cancelled"

        with pytest.raises(RuntimeError, match="handed over"):
            await change_after_handing_over()
        async with db.read() as session:
            assert await session.get(OrderRow, "handed-2") is None  # nothing committed
    finally:
        await db.dispose()
