"""Wallets: off-chain free and locked balances, and operator credits.

Until on-chain settlement and minting exist, money arrives as an operator
*deposit* and energy tokens as an operator *energy grant* (explicitly not
minted from metered production).
"""

from __future__ import annotations

from dataclasses import dataclass

from wattx.services.errors import InvalidAmountError, UserNotFoundError
from wattx.services.ledger import credit
from wattx.store import accounts as account_repo
from wattx.store.balances import Asset, balances_of
from wattx.store.db import Database


@dataclass(frozen=True, slots=True)
class Holding:
    free: int
    locked: int


@dataclass(frozen=True, slots=True)
class WalletView:
    account_id: str
    credit: Holding
    energy: Holding


class WalletService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def wallet(self, account_id: str) -> WalletView:
        async with self._db.read() as session:
            rows = await balances_of(session, account_id)

        def holding(asset: Asset) -> Holding:
            row = rows.get(asset)
            return Holding(row.free, row.locked) if row else Holding(0, 0)

        return WalletView(account_id, holding(Asset.CREDIT), holding(Asset.ENERGY))

    async def deposit_credit(self, account_id: str, amount: int) -> WalletView:
        """Operator-recorded deposit of money (micro-units) into a participant's wallet."""
        await self._credit(account_id, Asset.CREDIT, amount)
        return await self.wallet(account_id)

    async def grant_energy(self, account_id: str, qty_wh: int) -> WalletView:
        """Operator grant of energy tokens (Wh) without metering evidence."""
        await self._credit(account_id, Asset.ENERGY, qty_wh)
        return await self.wallet(account_id)

    async def _credit(self, account_id: str, asset: Asset, amount: int) -> None:
        if amount <= 0:
            raise InvalidAmountError("amount must be positive", amount=amount)
        async with self._db.write() as session:
            if await account_repo.user_by_id(session, account_id) is None:
                raise UserNotFoundError("no such user", user_id=account_id)
            await credit(session, account_id, asset, amount, lock=self._db.locks_rows)
