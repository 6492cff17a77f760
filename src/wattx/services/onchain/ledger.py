"""Balance movements inside a write transaction: escrow, release, trade transfer.

Each function reads the rows it changes with :func:`balance_for_update`, so on
PostgreSQL they are locked for the transaction and no update is lost. Every
change of a holding (free plus locked) is journaled in the same transaction
(:mod:`wattx.store.journal`), the record monthly statements are made from;
moves between free and locked are not.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from wattx.domain import Side, Trade
from wattx.services.errors import InsufficientBalanceError
from wattx.store import journal
from wattx.store.balances import FEE_ACCOUNT, GRID_ACCOUNT, Asset, balance_for_update


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
    journal.record(session, account, asset.value, amount, kind=kind, at=at, ref=ref)


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
    journal.record(session, account, asset.value, -amount, kind=kind, at=at, ref=ref)


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


async def transfer_for_trade(
    session: AsyncSession, trade: Trade, *, lock: bool, at: datetime
) -> None:
    """Move a trade's amounts out of both escrows, to the counterparty and the fee account.

    Buyer: locked credit pays value + wheeling + fee; receives the delivered Wh.
    Seller: locked energy gives qty_wh; receives value - fee. The loss
    (qty_wh - delivered_wh) goes to the grid account, so energy is conserved.
    Journaled at the trade's execution time (``at`` when it has none), as the
    trade row stores it.
    """
    at, ref = trade.executed_at or at, trade.id
    buyer_credit = await balance_for_update(session, trade.buyer, Asset.CREDIT, lock=lock)
    buyer_credit.locked -= trade.buyer_pays
    journal.record(
        session, trade.buyer, Asset.CREDIT.value, -trade.buyer_pays, kind="purchase", at=at, ref=ref
    )
    seller_energy = await balance_for_update(session, trade.seller, Asset.ENERGY, lock=lock)
    seller_energy.locked -= trade.qty_wh
    journal.record(
        session, trade.seller, Asset.ENERGY.value, -trade.qty_wh, kind="sale", at=at, ref=ref
    )
    await credit(
        session,
        trade.buyer,
        Asset.ENERGY,
        trade.delivered_wh,
        lock=lock,
        kind="purchase",
        at=at,
        ref=ref,
    )
    await credit(
        session,
        trade.seller,
        Asset.CREDIT,
        trade.seller_receives,
        lock=lock,
        kind="sale",
        at=at,
        ref=ref,
    )
    await credit(
        session, FEE_ACCOUNT, Asset.CREDIT, trade.fees, lock=lock, kind="fee", at=at, ref=ref
    )
    loss = trade.qty_wh - trade.delivered_wh
    if loss:
        await credit(
            session, GRID_ACCOUNT, Asset.ENERGY, loss, lock=lock, kind="loss", at=at, ref=ref
        )
