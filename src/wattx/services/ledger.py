"""Balance movements inside a write transaction: escrow, release, trade transfer.

Each function reads the rows it changes with :func:`balance_for_update`, so on
PostgreSQL they are locked for the transaction and no update is lost.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from wattx.domain import Side, Trade
from wattx.services.errors import InsufficientBalanceError
from wattx.store.balances import FEE_ACCOUNT, GRID_ACCOUNT, Asset, balance_for_update


def escrow_asset(side: Side) -> Asset:
    """Sellers lock energy tokens (Wh); buyers lock credit (micro-units)."""
    return Asset.ENERGY if side is Side.SELL else Asset.CREDIT


async def credit(
    session: AsyncSession, account: str, asset: Asset, amount: int, *, lock: bool
) -> None:
    row = await balance_for_update(session, account, asset, lock=lock)
    row.free += amount


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


async def transfer_for_trade(session: AsyncSession, trade: Trade, *, lock: bool) -> None:
    """Move a trade's amounts out of both escrows, to the counterparty and the fee account.

    Buyer: locked credit pays value + wheeling + fee; receives the delivered Wh.
    Seller: locked energy gives qty_wh; receives value - fee. The loss
    (qty_wh - delivered_wh) goes to the grid account, so energy is conserved.
    """
    buyer_credit = await balance_for_update(session, trade.buyer, Asset.CREDIT, lock=lock)
    buyer_credit.locked -= trade.buyer_pays
    seller_energy = await balance_for_update(session, trade.seller, Asset.ENERGY, lock=lock)
    seller_energy.locked -= trade.qty_wh
    await credit(session, trade.buyer, Asset.ENERGY, trade.delivered_wh, lock=lock)
    await credit(session, trade.seller, Asset.CREDIT, trade.seller_receives, lock=lock)
    await credit(session, FEE_ACCOUNT, Asset.CREDIT, trade.fees, lock=lock)
    loss = trade.qty_wh - trade.delivered_wh
    if loss:
        await credit(session, GRID_ACCOUNT, Asset.ENERGY, loss, lock=lock)
