"""Writing what the engine did into the database, inside the caller's transaction.

Orders, trades and balances change together: a trade's transfer, its record
and the fill state of both orders are one commit, and an order that reaches a
final state gives back whatever escrow it still holds.

Nothing here flushes: rows and balances already held by the transaction are
reused without a round trip (see :mod:`wattx.store.orders` and
:mod:`wattx.store.balances`), so many submissions can be recorded in one
transaction and written in one flush at commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from wattx.domain import Order, Trade
from wattx.domain.orders import OrderStatus
from wattx.services.onchain.ledger import release_escrow, transfer_for_trade
from wattx.store import orders as order_repo
from wattx.store.balances import FEE_ACCOUNT, GRID_ACCOUNT, Asset, lock_balances
from wattx.store.orders import NewOrderRow, OrderRecord
from wattx.store.trades import trade_row


class EscrowInvariantError(RuntimeError):
    """A trade would take more from an order's escrow than it holds: a defect, never input."""


async def record_engine_changes(
    session: AsyncSession,
    *,
    new_rows: Sequence[NewOrderRow],
    changed: Iterable[Order],
    trades: Sequence[Trade],
    at: datetime,
    lock: bool,
) -> None:
    rows: dict[str, OrderRecord] = {row.id: row for row in new_rows}
    order_repo.hold_order_rows(session, new_rows)
    changed_orders = {order.id: order for order in changed}
    needed = set(changed_orders)
    needed.update(trade.buy_order_id for trade in trades)
    needed.update(trade.sell_order_id for trade in trades)
    to_load = sorted(order_id for order_id in needed if order_id not in rows)
    rows.update(await order_repo.orders_for_update(session, to_load, lock=lock))
    for order_id, order in changed_orders.items():
        order_repo.copy_fill_state(rows[order_id], order, at)
    # Every balance the trades and escrow releases below touch, read (and on
    # PostgreSQL locked) in one statement instead of one per trade and party.
    await lock_balances(session, _balance_keys(trades, rows.values()), lock=lock)
    for trade in trades:
        session.add(trade_row(trade, at))
        await transfer_for_trade(session, trade, lock=lock, at=at)
        _draw(rows[trade.buy_order_id], trade.buyer_pays)
        _draw(rows[trade.sell_order_id], trade.qty_wh)
    for row in rows.values():
        if OrderStatus(row.status).is_final and row.escrow_remaining:
            await release_escrow(
                session, row.owner_id, Asset(row.escrow_asset), row.escrow_remaining, lock=lock
            )
            row.escrow_remaining = 0


def _balance_keys(trades: Sequence[Trade], rows: Iterable[OrderRecord]) -> set[tuple[str, Asset]]:
    keys: set[tuple[str, Asset]] = set()
    for trade in trades:
        keys.update(
            (
                (trade.buyer, Asset.CREDIT),
                (trade.buyer, Asset.ENERGY),
                (trade.seller, Asset.ENERGY),
                (trade.seller, Asset.CREDIT),
                (FEE_ACCOUNT, Asset.CREDIT),
            )
        )
        if trade.qty_wh != trade.delivered_wh:
            keys.add((GRID_ACCOUNT, Asset.ENERGY))
    for row in rows:
        if OrderStatus(row.status).is_final:
            keys.add((row.owner_id, Asset(row.escrow_asset)))
    return keys


def _draw(row: OrderRecord, amount: int) -> None:
    if amount > row.escrow_remaining:
        raise EscrowInvariantError(
            f"order {row.id} escrow {row.escrow_remaining} < {amount} drawn by a trade"
        )
    row.escrow_remaining -= amount
