"""Self-custody accounts: a participant registers their own address and signs their own
deposits and withdrawals; custodial keys stay the default.

* Registering: the participant signs (EIP-191 ``personal_sign``) a one-time challenge
  naming their account and the address (nonces as for wallet login: single use,
  expiring, spent even by a bad signature). Allowed while the current chain account
  holds nothing, off chain or on chain, and the participant owns no meter.
* Deposits: the operator's deposit mints credit to the address only; the participant
  sends ``approve`` and ``deposit_*`` themselves, through :meth:`CustodyService.relay`
  or their own node. The off-chain free balance rises when the Marketplace's
  ``Deposited`` event for a self-custody address is applied
  (:func:`apply_self_custody_deposits`, once per tx hash and log index).
* Withdrawals: the Marketplace lets a self-custody address withdraw only with an
  operator's one-time permit. The service debits its off-chain free balance (what open
  orders do not hold), then signs a permit for that amount; an unused permit can be
  voided on chain and the amount returned (:meth:`CustodyService.cancel_withdrawal`).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.domain.errors import ConflictError
from wattx.services.errors import WalletSignatureError
from wattx.services.identity.wallet_auth import normalise_address, signer_of, spend_nonce
from wattx.services.onchain.chain import ChainAccounts
from wattx.services.onchain.ledger import credit
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.port import Asset as ChainAsset
from wattx.settlement.port import ChainEvent, TxResult, WithdrawPermit
from wattx.store import settlement as settlement_repo
from wattx.store.balances import Asset, balances_of
from wattx.store.db import Database
from wattx.store.models import MeterRow, WalletNonceRow
from wattx.units import wh_to_energy_base_units

_ENERGY_BASE_UNITS_PER_WH = wh_to_energy_base_units(1)

PERMIT_TTL_S = 3_600
"""How long a withdrawal permit stays usable on chain."""


class AddressTakenError(ConflictError):
    code = "address_taken"
    title = "Address already belongs to an account"


class CustodialFundsRemainError(ConflictError):
    code = "custodial_funds_remain"
    title = "The current chain account still holds funds"


class MeterOwnerCustodyError(ConflictError):
    code = "meter_owner_custodial"
    title = "Meter owners keep custodial accounts"


class NotSelfCustodyError(ConflictError):
    code = "not_self_custody"
    title = "The account is custodial; the service signs for it"


class TransactionAlreadyRelayedError(ConflictError):
    code = "transaction_already_relayed"
    title = "Transaction already relayed"


class PermitNotIssuedError(ConflictError):
    code = "permit_not_issued"
    title = "Not a withdrawal permit this service issued to you"


@dataclass(frozen=True, slots=True)
class AddressChallenge:
    address: str
    nonce: str
    message: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Relayed:
    """A relayed transaction and what it added to the off-chain free balance."""

    result: TxResult
    credited: dict[Asset, int]


def address_message(user_id: str, address: str, nonce: str) -> str:
    """The exact text the address signs to become the account's self-custody address."""
    return (
        f"Register this address for self-custody in wattx\n"
        f"account: {user_id}\naddress: {address}\nnonce: {nonce}"
    )


def _deposit_key(event: ChainEvent) -> str:
    # chain_registrations keys are 64 characters: a digest of (tx hash, log index).
    return keccak(text=f"{event.tx_hash.lower()}:{event.log_index}").hex()


async def apply_self_custody_deposits(
    session: AsyncSession,
    chain: ContractChain,
    events: Iterable[ChainEvent],
    *,
    lock: bool,
    at: datetime,
) -> dict[str, dict[Asset, int]]:
    """Credit the off-chain free balance with Marketplace deposits of self-custody addresses,
    each event once (by tx hash and log index); returns what was credited, by user.

    Deposits of custodial addresses are skipped: the service made them and credited
    them itself. Energy is credited in whole Wh (base units // 10**6).
    """
    tokens = {
        chain.deployment.address_of("CreditToken"): Asset.CREDIT,
        chain.deployment.address_of("EnergyToken"): Asset.ENERGY,
    }
    credited: dict[str, dict[Asset, int]] = {}
    for event in events:
        if event.contract != "Marketplace" or event.name != "Deposited":
            continue
        asset = tokens.get(to_checksum_address(event.args["token"]))
        row = await settlement_repo.chain_account_by_address(
            session, to_checksum_address(event.args["account"])
        )
        if asset is None or row is None or row.custody != settlement_repo.CUSTODY_SELF:
            continue
        key = _deposit_key(event)
        if await settlement_repo.is_registered(session, "deposit", key):
            continue
        amount = int(event.args["amount"])
        if asset is Asset.ENERGY:
            amount //= _ENERGY_BASE_UNITS_PER_WH
        if amount > 0:
            await credit(
                session, row.user_id, asset, amount, lock=lock, kind="deposit", at=at, ref=key
            )
            per_user = credited.setdefault(row.user_id, {})
            per_user[asset] = per_user.get(asset, 0) + amount
        await settlement_repo.add_registration(session, "deposit", key, event.tx_hash)
    return credited


class CustodyService:
    """Registration of self-custody addresses, the transaction relay, withdrawal permits."""

    def __init__(
        self, db: Database, accounts: ChainAccounts, *, challenge_ttl_s: int = 300
    ) -> None:
        self._db = db
        self._accounts = accounts
        self._challenge_ttl = timedelta(seconds=challenge_ttl_s)
        # Checking that a raw transaction was not relayed before and recording it
        # must not interleave with another relay of the same bytes.
        self._relaying = asyncio.Lock()

    @property
    def _chain(self) -> ContractChain:
        return self._accounts.chain

    async def is_self_custody(self, user_id: str) -> bool:
        async with self._db.read() as session:
            row = await settlement_repo.chain_account(session, user_id)
        return row is not None and row.custody == settlement_repo.CUSTODY_SELF

    # -- registration ---------------------------------------------------------

    async def challenge(self, user_id: str, address: str) -> AddressChallenge:
        checksummed = normalise_address(address)
        nonce = secrets.token_hex(16)
        expires_at = self._accounts.clock.now() + self._challenge_ttl
        async with self._db.write() as session:
            session.add(WalletNonceRow(nonce=nonce, address=checksummed, expires_at=expires_at))
        message = address_message(user_id, checksummed, nonce)
        return AddressChallenge(checksummed, nonce, message, expires_at)

    async def register_address(self, user_id: str, address: str, nonce: str, signature: str) -> str:
        """Make ``address`` the user's self-custody chain account; returns it checksummed."""
        checksummed = normalise_address(address)
        await spend_nonce(self._db, nonce, checksummed, self._accounts.clock.now())
        message = address_message(user_id, checksummed, nonce)
        if signer_of(message, signature) != checksummed:
            raise WalletSignatureError("signature is not from this address")

        async def holds_nothing(current: str | None) -> None:
            await self._refuse_taken_or_funded(user_id, checksummed, current)

        await self._accounts.adopt_self_custody(user_id, checksummed, holds_nothing)
        return checksummed

    async def _refuse_taken_or_funded(
        self, user_id: str, address: str, current: str | None
    ) -> None:
        async with self._db.read() as session:
            owner = await settlement_repo.chain_account_by_address(session, address)
            balances = await balances_of(session, user_id)
            meters = await _meter_count(session, user_id)
        if owner is not None and owner.user_id != user_id:
            raise AddressTakenError("this address belongs to another account", address=address)
        if meters:
            # Minting deposits energy for the owner with a custodial key.
            raise MeterOwnerCustodyError(
                "participants who own meters keep a custodial account", meters=meters
            )
        held = {a.value: (r.free, r.locked) for a, r in balances.items() if r.free or r.locked}
        if held:
            raise CustodialFundsRemainError(
                "withdraw or spend the balance the service holds first", holdings=held
            )
        if current is None or current == address:
            return
        chain = self._chain
        escrow = await self._accounts.read(chain.balances, current)
        wallet = [
            await self._accounts.read(chain.wallet_balance, current, asset) for asset in ChainAsset
        ]
        if any(
            (escrow.free_energy, escrow.locked_energy, escrow.free_credit, escrow.locked_credit)
        ):
            raise CustodialFundsRemainError(
                "the current address holds escrow in the Marketplace", address=current
            )
        if any(wallet) and not await self.is_self_custody(user_id):
            raise CustodialFundsRemainError(
                "the custodial address holds tokens; withdraw them first", address=current
            )

    # -- the relay --------------------------------------------------------------

    async def relay(self, user_id: str, raw: bytes) -> Relayed:
        """Send a transaction the participant signed, and apply its deposits off chain."""
        address = await self._self_address(user_id)
        tx_key = keccak(raw).hex()
        async with self._relaying:
            async with self._db.read() as session:
                if await settlement_repo.is_registered(session, "relayed", tx_key):
                    raise TransactionAlreadyRelayedError(
                        "this signed transaction was relayed before", tx_hash="0x" + tx_key
                    )
            chain = self._chain
            result = await self._accounts.run(
                lambda: chain.send_raw_transaction(raw, sender=address)
            )
            async with self._db.write() as session:
                await settlement_repo.add_registration(session, "relayed", tx_key, result.tx_hash)
                credited = await apply_self_custody_deposits(
                    session,
                    chain,
                    result.events,
                    lock=self._db.locks_rows,
                    at=self._accounts.clock.now(),
                )
        return Relayed(result, credited.get(user_id, {}))

    # -- withdrawals --------------------------------------------------------------

    async def issue_permit(self, user_id: str, asset: Asset, amount: int) -> WithdrawPermit:
        """A permit for ``amount`` the caller has already taken off the free balance."""
        address = await self._self_address(user_id)
        chain = self._chain
        on_chain = amount if asset is Asset.CREDIT else wh_to_energy_base_units(amount)
        deadline = await self._accounts.run(chain.timestamp) + PERMIT_TTL_S
        nonce = secrets.randbits(128)
        return await self._accounts.run(
            chain.sign_withdraw_permit, address, ChainAsset(asset.value), on_chain, nonce, deadline
        )

    async def cancel_withdrawal(
        self, user_id: str, asset: Asset, amount: int, nonce: int, deadline: int, signature: bytes
    ) -> None:
        """Void an unused permit on chain and return its amount to the free balance."""
        address = await self._self_address(user_id)
        chain = self._chain
        on_chain = amount if asset is Asset.CREDIT else wh_to_energy_base_units(amount)
        # The operator's signatures are deterministic (RFC 6979): signing the same
        # fields again gives the same bytes only for a permit this service issued.
        expected = await self._accounts.run(
            chain.sign_withdraw_permit, address, ChainAsset(asset.value), on_chain, nonce, deadline
        )
        if not secrets.compare_digest(expected.signature, signature):
            raise PermitNotIssuedError("no such permit for your address", nonce=nonce)
        # Voided on chain first: once that succeeds the permit can never pay out.
        await self._accounts.run(chain.cancel_permit, address, nonce)
        async with self._db.write() as session:
            await credit(
                session,
                user_id,
                asset,
                amount,
                lock=self._db.locks_rows,
                kind="withdrawal_cancelled",
                at=self._accounts.clock.now(),
            )

    async def _self_address(self, user_id: str) -> str:
        async with self._db.read() as session:
            row = await settlement_repo.chain_account(session, user_id)
        if row is None or row.custody != settlement_repo.CUSTODY_SELF:
            raise NotSelfCustodyError("register your own address first")
        return row.address


async def _meter_count(session: AsyncSession, user_id: str) -> int:
    query = select(func.count(MeterRow.id)).where(MeterRow.owner_id == user_id)
    return int(await session.scalar(query) or 0)
