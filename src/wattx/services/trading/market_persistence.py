"""Writing what the engine did into the database, inside the caller's transaction.

Orders, trades and balances change together: a trade's transfer, its record
and the fill state of both orders are one commit, and an order that reaches a
final state gives back whatever escrow it still holds.

The writer places many submissions in one transaction, and most of what their
trades touch was not read by it: resting orders of earlier transactions and
their owners' balances. :class:`EngineChanges` changes at once what the
transaction holds (the orders it created, the balances it locked for escrow)
and leaves the rest for :meth:`EngineChanges.write`, which reads (and on
PostgreSQL locks) those rows in one statement per table and writes the trades
and journal entries in one statement each. The result is the same as changing
every row as each trade happens: a deferred change is only ever to a row no
rule of the transaction reads before :meth:`~EngineChanges.write`, except an
order's escrow given back to an owner whose balance the transaction holds,
which is read at once so a later submission of that owner can use it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from wattx.domain import Order, Trade
from wattx.domain.orders import OrderStatus
from wattx.services.onchain.ledger import escrow_asset, transfer_for_trade
from wattx.store import journal
from wattx.store import orders as order_repo
from wattx.store import trades as trade_repo
from wattx.store.balances import Asset, held_balance, lock_moved_balances, move_balance
from wattx.store.orders import NewOrderRow, OrderRecord


class EscrowInvariantError(RuntimeError):
    """A trade would take more from an order's escrow than it holds: a defect, never input."""


@dataclass(slots=True)
class _Unread:
    """What happened to an order row the transaction has not read yet."""

    order: Order | None = None
    """The engine's latest state of the order, when it reported the order changed."""
    drawn: int = 0
    """Escrow its trades took, in micro-units or Wh."""


class EngineChanges:
    """The engine's changes of one write transaction: :meth:`add` each result as it comes,
    then :meth:`write` once, before the commit."""

    def __init__(self, session: AsyncSession, *, at: datetime, lock: bool) -> None:
        self._session = session
        self._at = at
        self._lock = lock
        self._unread: dict[str, _Unread] = {}
        self._trades: list[dict[str, Any]] = []
        self._entries: list[dict[str, Any]] = []

    async def add(
        self, *, new_rows: Sequence[NewOrderRow], changed: Sequence[Order], trades: Sequence[Trade]
    ) -> None:
        """Record new orders, orders the engine changed and its trades, in that order."""
        session = self._session
        order_repo.hold_order_rows(session, new_rows)
        if not changed and not trades:
            # Most orders of a batch rest and touch nothing else: no order to read.
            for new_row in new_rows:
                self._release_if_final(new_row)
            return
        # The orders this result touched, in order (a dict as an ordered set).
        involved = dict.fromkeys(row.id for row in new_rows)
        for order in changed:
            involved[order.id] = None
            row = order_repo.held_order_row(session, order.id)
            if row is None:
                self._unread_of(order.id).order = order
            else:
                order_repo.copy_fill_state(row, order, self._at)
        for trade in trades:
            self._trades.append(trade_repo.trade_columns(trade, self._at))
            self._entries.extend(transfer_for_trade(session, trade, at=self._at))
            self._draw(trade.buy_order_id, trade.buyer_pays)
            self._draw(trade.sell_order_id, trade.qty_wh)
            involved.setdefault(trade.buy_order_id, None)
            involved.setdefault(trade.sell_order_id, None)
        due = sorted(order_id for order_id in involved if self._read_now(order_id))
        if due:
            await self._read(due)
        for order_id in involved:
            row = order_repo.held_order_row(session, order_id)
            if row is not None:
                self._release_if_final(row)

    async def write(self) -> None:
        """Write the new orders, read the rows left for later and change them, and write
        trades and journal entries."""
        await order_repo.write_new_rows(self._session)
        if self._unread:
            for row in await self._read(sorted(self._unread)):
                self._release_if_final(row)
        await lock_moved_balances(self._session, lock=self._lock)
        if self._trades:
            await trade_repo.insert_trades(self._session, self._trades)
            self._trades = []
        await journal.record_many(self._session, self._entries)
        self._entries = []

    def _unread_of(self, order_id: str) -> _Unread:
        unread = self._unread.get(order_id)
        if unread is None:
            unread = self._unread[order_id] = _Unread()
        return unread

    def _draw(self, order_id: str, amount: int) -> None:
        row = order_repo.held_order_row(self._session, order_id)
        if row is None:
            self._unread_of(order_id).drawn += amount
        else:
            _draw(row, amount)

    def _read_now(self, order_id: str) -> bool:
        """Whether an unread order's row is needed before :meth:`write`: when it has reached
        a final state and its owner's balance of its escrow asset is held, for then that
        balance must show the escrow given back to whatever the transaction does next."""
        unread = self._unread.get(order_id)
        if unread is None:
            return False
        order = unread.order
        if order is None:
            return True  # its state is unknown without the row
        return order.status.is_final and (
            held_balance(self._session, order.owner, escrow_asset(order.side)) is not None
        )

    async def _read(self, order_ids: list[str]) -> list[OrderRecord]:
        found = await order_repo.orders_for_update(self._session, order_ids, lock=self._lock)
        rows = []
        for order_id in order_ids:
            row = found[order_id]
            unread = self._unread.pop(order_id)
            if unread.order is not None:
                order_repo.copy_fill_state(row, unread.order, self._at)
            _draw(row, unread.drawn)
            rows.append(row)
        return rows

    def _release_if_final(self, row: OrderRecord) -> None:
        if row.escrow_remaining and row.status in _FINAL_STATUSES:
            asset = Asset(row.escrow_asset)
            amount = row.escrow_remaining
            move_balance(self._session, row.owner_id, asset, free=amount, locked=-amount)
            row.escrow_remaining = 0


# The statuses as the rows store them (an order's row is asked once or more per order).
_FINAL_STATUSES = frozenset(status.value for status in OrderStatus if status.is_final)


async def record_engine_changes(
    session: AsyncSession,
    *,
    new_rows: Sequence[NewOrderRow],
    changed: Sequence[Order],
    trades: Sequence[Trade],
    at: datetime,
    lock: bool,
) -> None:
    """One engine result, written at once (:class:`EngineChanges` with one :meth:`add`)."""
    changes = EngineChanges(session, at=at, lock=lock)
    await changes.add(new_rows=new_rows, changed=changed, trades=trades)
    await changes.write()


def _draw(row: OrderRecord, amount: int) -> None:
    if amount > row.escrow_remaining:
        raise EscrowInvariantError(
            f"order {row.id} escrow {row.escrow_remaining} < {amount} drawn by a trade"
        )
    row.escrow_remaining -= amount
