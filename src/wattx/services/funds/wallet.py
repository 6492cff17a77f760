"""Wallets: free and locked balances as the service sees them and as the chain holds them.

Credit arrives as an operator *deposit*: CreditToken is minted to the
participant's custodial address and deposited into the Marketplace, then the
off-chain free balance rises by the same amount. Energy tokens arrive by
minting from verified meter readings (:mod:`wattx.services.onchain.minting`); the
operator *energy grant* remains for demonstrations and raises only the
off-chain balance, so an epoch trading granted energy cannot settle on chain.

Withdrawals take only free balance: the off-chain free balance falls first
(so no order can spend it meanwhile), then the Marketplace pays out to the
participant's address; if the chain refuses, the off-chain balance is
restored. Per-order locks are kept off-chain: the chain's Marketplace holds
the same totals, all free, and ``settle_epoch`` moves them.

A self-custody participant (:mod:`wattx.services.funds.custody`) holds their own
key: the operator's deposit only mints credit to their address (they deposit
it themselves, and the off-chain balance rises when that deposit is seen),
and a withdrawal debits the off-chain free balance and returns an operator's
permit for the participant to send.
"""

from __future__ import annotations

from dataclasses import dataclass

from wattx.domain.epochs import EpochClock
from wattx.services.errors import InvalidAmountError, UserNotFoundError
from wattx.services.funds.custody import CustodyService
from wattx.services.funds.deposit_requests import DepositRequestService
from wattx.services.onchain.chain import ChainAccounts
from wattx.services.onchain.ledger import credit, debit_free
from wattx.settlement.port import Asset as ChainAsset
from wattx.settlement.port import WithdrawPermit
from wattx.store import accounts as account_repo
from wattx.store.balances import Asset, balances_of
from wattx.store.db import Database
from wattx.units import wh_to_energy_base_units

_ENERGY_BASE_UNITS_PER_WH = wh_to_energy_base_units(1)


@dataclass(frozen=True, slots=True)
class Holding:
    free: int
    locked: int


@dataclass(frozen=True, slots=True)
class ChainHolding:
    """On chain: Marketplace free and locked, and tokens held in the address's wallet."""

    free: int
    locked: int
    wallet: int


@dataclass(frozen=True, slots=True)
class ChainView:
    address: str
    credit: ChainHolding
    energy: ChainHolding


@dataclass(frozen=True, slots=True)
class WalletView:
    account_id: str
    credit: Holding
    energy: Holding
    chain: ChainView | None = None


@dataclass(frozen=True, slots=True)
class Withdrawal:
    """The wallet after a withdrawal; for a self-custody account, the permit to send."""

    wallet: WalletView
    permit: WithdrawPermit | None = None


class WalletService:
    def __init__(self, db: Database, accounts: ChainAccounts) -> None:
        self._db = db
        self._accounts = accounts
        self.custody = CustodyService(db, accounts)
        self.requests = DepositRequestService(db, self)

    @property
    def clock(self) -> EpochClock:
        return self._accounts.clock

    async def wallet(self, account_id: str, *, with_chain: bool = False) -> WalletView:
        async with self._db.read() as session:
            rows = await balances_of(session, account_id)

        def holding(asset: Asset) -> Holding:
            row = rows.get(asset)
            return Holding(row.free, row.locked) if row else Holding(0, 0)

        chain = await self.chain_view(account_id) if with_chain else None
        return WalletView(account_id, holding(Asset.CREDIT), holding(Asset.ENERGY), chain)

    async def chain_view(self, account_id: str) -> ChainView | None:
        """The account's balances on chain, energy in Wh; ``None`` without a chain address."""
        address = await self._accounts.address_of(account_id)
        if address is None:
            return None
        chain = self._accounts.chain
        escrow = await self._accounts.read(chain.balances, address)
        credit_held = await self._accounts.read(chain.wallet_balance, address, ChainAsset.CREDIT)
        energy_held = await self._accounts.read(chain.wallet_balance, address, ChainAsset.ENERGY)
        per_wh = _ENERGY_BASE_UNITS_PER_WH
        return ChainView(
            address=address,
            credit=ChainHolding(escrow.free_credit, escrow.locked_credit, credit_held),
            energy=ChainHolding(
                escrow.free_energy // per_wh, escrow.locked_energy // per_wh, energy_held // per_wh
            ),
        )

    async def deposit_credit(self, account_id: str, amount: int) -> WalletView:
        """Operator deposit of money (micro-units): minted on chain, deposited into the
        Marketplace for the participant, and raised in the off-chain free balance.

        For a self-custody account only the mint happens: the service cannot sign the
        participant's deposit, and credits the balance when that deposit is seen."""
        await self._require_user(account_id, amount)
        address, signer = await self._accounts.custody_signer(account_id)
        chain = self._accounts.chain
        await self._accounts.run(chain.mint_credit, address, amount)
        if signer is None:
            return await self.wallet(account_id, with_chain=True)
        await self._accounts.run(chain.deposit, signer, ChainAsset.CREDIT, amount)
        async with self._db.write() as session:
            await credit(
                session,
                account_id,
                Asset.CREDIT,
                amount,
                lock=self._db.locks_rows,
                kind="deposit",
                at=self._accounts.clock.now(),
            )
        return await self.wallet(account_id, with_chain=True)

    async def grant_energy(self, account_id: str, qty_wh: int) -> WalletView:
        """Operator grant of energy tokens (Wh) without metering evidence, off chain only."""
        await self._require_user(account_id, qty_wh)
        async with self._db.write() as session:
            await credit(
                session,
                account_id,
                Asset.ENERGY,
                qty_wh,
                lock=self._db.locks_rows,
                kind="grant",
                at=self._accounts.clock.now(),
            )
        # Shown like GET /wallet: the chain's side shows the grant is not on chain.
        return await self.wallet(account_id, with_chain=True)

    async def withdraw(self, account_id: str, asset: Asset, amount: int) -> Withdrawal:
        """Pay ``amount`` (micro-units, or Wh of energy) of the free balance out of the
        Marketplace to the participant's address; for a self-custody account, take it
        off the free balance and return the permit the participant sends."""
        await self._require_user(account_id, amount)
        _, signer = await self._accounts.custody_signer(account_id)
        await self._debit_free(account_id, asset, amount)
        on_chain = amount if asset is Asset.CREDIT else wh_to_energy_base_units(amount)
        permit: WithdrawPermit | None = None
        try:
            if signer is None:
                permit = await self.custody.issue_permit(account_id, asset, amount)
            else:
                await self._accounts.run(
                    self._accounts.chain.withdraw, signer, ChainAsset(asset.value), on_chain
                )
        except BaseException:
            async with self._db.write() as session:
                await credit(
                    session,
                    account_id,
                    asset,
                    amount,
                    lock=self._db.locks_rows,
                    kind="withdrawal_undone",
                    at=self._accounts.clock.now(),
                )
            raise
        return Withdrawal(await self.wallet(account_id, with_chain=True), permit)

    async def cancel_withdrawal(
        self,
        account_id: str,
        asset: Asset,
        amount: int,
        nonce: int,
        deadline: int,
        signature: bytes,
    ) -> WalletView:
        """Void a self-custody participant's unused permit; its amount is free again."""
        await self._require_user(account_id, amount)
        await self.custody.cancel_withdrawal(account_id, asset, amount, nonce, deadline, signature)
        return await self.wallet(account_id, with_chain=True)

    async def _debit_free(self, account_id: str, asset: Asset, amount: int) -> None:
        async with self._db.write() as session:
            await debit_free(
                session,
                account_id,
                asset,
                amount,
                lock=self._db.locks_rows,
                kind="withdrawal",
                at=self._accounts.clock.now(),
            )

    async def _require_user(self, account_id: str, amount: int) -> None:
        if amount <= 0:
            raise InvalidAmountError("amount must be positive", amount=amount)
        async with self._db.read() as session:
            if await account_repo.user_by_id(session, account_id) is None:
                raise UserNotFoundError("no such user", user_id=account_id)
