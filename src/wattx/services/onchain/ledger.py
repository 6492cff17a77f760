"""Balance movements inside a write transaction: escrow, release, trade transfer.

Each function reads the rows it changes with :func:`balance_for_update`, so on
PostgreSQL they are locked for the transaction and no update is lost. Every
change of a holding (free plus locked) is journaled in the same transaction
(:mod:`wattx.store.journal`), the record monthly statements are made from;
moves between free and locked are not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from wattx.domain import Side, Trade
from wattx.services.errors import InsufficientBalanceError
from wattx.store import journal
from wattx.store.balances import (
    FEE_ACCOUNT,
    GRID_ACCOUNT,
    Asset,
    balance_for_update,
    move_balance,
)


def escrow_asset(side: Side) -> Asset:
    """Sellers lock energy tokens (Wh); buyers lock credit (micro-units)."""
    return Asset.ENERGY if side is Side.SELL else Asset.CREDIT


async def credit(
    session: AsyncSession,
    account: str,
    asset: Asset,
    amount: int,
    *,
    lock: bool,
    kind: str,
    at: datetime,
    ref: str | None = None,
) -> None:
    """Raise the free balance, journaled as ``kind`` at ``at``."""
    row = await balance_for_update(session, account, asset, lock=lock)
    row.free += amount
    journal.record(session, journal.entry(account, asset.value, amount, kind=kind, at=at, ref=ref))


async def debit_free(
    session: AsyncSession,
    account: str,
    asset: Asset,
    amount: int,
    *,
    lock: bool,
    kind: str,
    at: datetime,
    ref: str | None = None,
) -> None:
    """Take ``amount`` off the free balance, journaled; refused when it does not cover it."""
    row = await balance_for_update(session, account, asset, lock=lock)
    if row.free < amount:
        raise InsufficientBalanceError(
            f"free {asset.value} balance does not cover the {kind}",
            asset=asset.value,
            free=row.free,
            required=amount,
        )
    row.free -= amount
    journal.record(session, journal.entry(account, asset.value, -amount, kind=kind, at=at, ref=ref))


async def lock_escrow(
    session: AsyncSession, account: str, asset: Asset, amount: int, *, lock: bool
) -> None:
    row = await balance_for_update(session, account, asset, lock=lock)
    if row.free < amount:
        raise InsufficientBalanceError(
            f"free {asset.value} balance does not cover the escrow",
            asset=asset.value,
            free=row.free,
            required=amount,
        )
    row.free -= amount
    row.locked += amount


async def release_escrow(
    session: AsyncSession, account: str, asset: Asset, amount: int, *, lock: bool
) -> None:
    if amount == 0:
        return
    row = await balance_for_update(session, account, asset, lock=lock)
    row.locked -= amount
    row.free += amount


def transfer_for_trade(
    session: AsyncSession, trade: Trade, *, at: datetime
) -> list[dict[str, Any]]:
    """Move a trade's amounts out of both escrows, to the counterparty and the fee account,
    and return the journal entries of the moves for the caller to record
    (:func:`wattx.store.journal.record_many`) in the same transaction.

    Buyer: locked credit pays value + wheeling + fee; receives the delivered Wh.
    Seller: locked energy gives qty_wh; receives value - fee. The loss
    (qty_wh - delivered_wh) goes to the grid account, so energy is conserved.
    Journaled at the trade's execution time (``at`` when it has none), as the
    trade row stores it.

    The moves use :func:`wattx.store.balances.move_balance`: rows the transaction holds
    change at once, the others when it reads them (so a batch of trades reads its
    counterparties' balances once; :func:`~wattx.store.balances.lock_moved_balances`).
    """
    at, ref = trade.executed_at or at, trade.id
    loss = trade.qty_wh - trade.delivered_wh
    moves = (
        (trade.buyer, Asset.CREDIT, 0, -trade.buyer_pays, "purchase"),
        (trade.seller, Asset.ENERGY, 0, -trade.qty_wh, "sale"),
        (trade.buyer, Asset.ENERGY, trade.delivered_wh, 0, "purchase"),
        (trade.seller, Asset.CREDIT, trade.seller_receives, 0, "sale"),
        (FEE_ACCOUNT, Asset.CREDIT, trade.fees, 0, "fee"),
        (GRID_ACCOUNT, Asset.ENERGY, loss, 0, "loss"),
    )
    entries = []
    for account, asset, free, locked, kind in moves:
        if free or locked:
            move_balance(session, account, asset, free=free, locked=locked)
            entries.append(
                journal.entry(account, asset.value, free + locked, kind=kind, at=at, ref=ref)
            )
    return entries
