"""Retirement: burning energy tokens against one's own metered consumption.

A participant may retire at most what their meters imported, less what they
retired before. The tokens leave the off-chain free balance and a pending
retirement is recorded in one transaction (so two requests cannot both spend
the same consumption); then the Marketplace pays them out to the
participant's address and ``EnergyToken.retire`` burns them; the record gets
the transaction hash. If the chain refuses, the reservation is given back.
"""

from __future__ import annotations

from datetime import timedelta

from wattx.domain.epochs import EpochClock
from wattx.domain.errors import ConflictError
from wattx.services.errors import InsufficientBalanceError, InvalidAmountError
from wattx.services.onchain.chain import ChainAccounts
from wattx.services.onchain.ledger import credit
from wattx.settlement.port import Asset as ChainAsset
from wattx.store import journal
from wattx.store import settlement as repo
from wattx.store.balances import Asset, balance_for_update
from wattx.store.db import Database
from wattx.store.models_settlement import RetirementRow
from wattx.units import wh_to_energy_base_units

RETIREMENT_PENDING = "pending"
RETIREMENT_CONFIRMED = "confirmed"
RETIREMENT_FAILED = repo.RETIREMENT_FAILED

STALE_AFTER = timedelta(minutes=2)
"""A pending retirement older than this is not in flight any more: it was interrupted."""

_REASON_BYTES = 64  # EnergyToken.retire takes a String[64]


def chain_reason(retirement_id: int, reason: str) -> str:
    """The reason recorded on chain: the record's tag, then as much of the reason as fits."""
    tag = f"#{retirement_id} "
    room = _REASON_BYTES - len(tag)
    return tag + reason.encode("utf-8")[:room].decode("utf-8", errors="ignore")


class RetirementExceedsConsumptionError(ConflictError):
    code = "retirement_exceeds_consumption"
    title = "Cannot retire more than your meters consumed"


class RetirementService:
    def __init__(self, db: Database, accounts: ChainAccounts, clock: EpochClock) -> None:
        self._db = db
        self._accounts = accounts
        self._clock = clock
        self._in_flight: set[int] = set()

    async def retire(self, user_id: str, qty_wh: int, reason: str) -> RetirementRow:
        if qty_wh <= 0:
            raise InvalidAmountError("amount must be positive", amount=qty_wh)
        signer = await self._accounts.signer_of(user_id)
        row = await self._reserve(user_id, qty_wh, reason)
        self._in_flight.add(row.id)
        try:
            chain = self._accounts.chain
            amount = wh_to_energy_base_units(qty_wh)
            try:
                await self._accounts.run(chain.withdraw, signer, ChainAsset.ENERGY, amount)
                result = await self._accounts.run(
                    chain.retire, signer, amount, chain_reason(row.id, reason)
                )
            except Exception:
                await self._give_back(row)
                raise
            return await self._confirm(row.id, result.tx_hash)
        finally:
            self._in_flight.discard(row.id)

    async def recover_stale(self) -> list[RetirementRow]:
        """Settle every interrupted retirement: confirmed if the chain burnt the tokens,
        failed and given back if it did not. Returns the records it changed."""
        async with self._db.read() as session:
            stale = await repo.stale_pending_retirements(session, self._clock.now() - STALE_AFTER)
        changed: list[RetirementRow] = []
        for row in stale:
            if row.id in self._in_flight:
                continue
            async with self._db.read() as session:
                burnt = await repo.indexed_event_with_arg(
                    session, "EnergyToken", "Retired", "reason", chain_reason(row.id, row.reason)
                )
            if burnt is not None:
                changed.append(await self._confirm(row.id, burnt.tx_hash))
            else:
                changed.append(await self._give_back(row))
        return changed

    async def _confirm(self, retirement_id: int, tx_hash: str) -> RetirementRow:
        async with self._db.write() as session:
            stored = await session.get(RetirementRow, retirement_id)
            assert stored is not None
            stored.status = RETIREMENT_CONFIRMED
            stored.tx_hash = tx_hash
        return stored

    async def _give_back(self, row: RetirementRow) -> RetirementRow:
        """Undo an interrupted retirement that never reached the burn."""
        address, signer = await self._accounts.custody_signer(row.user_id)
        if signer is not None:
            chain = self._accounts.chain
            # The withdrawal may have happened: custodial wallets hold nothing
            # outside the Marketplace between requests, so put back what is there.
            held = await self._accounts.run(chain.wallet_balance, address, ChainAsset.ENERGY)
            if held:
                await self._accounts.run(chain.deposit, signer, ChainAsset.ENERGY, held)
        async with self._db.write() as session:
            stored = await session.get(RetirementRow, row.id)
            assert stored is not None
            stored.status = RETIREMENT_FAILED
            await credit(
                session,
                row.user_id,
                Asset.ENERGY,
                row.wh,
                lock=self._db.locks_rows,
                kind="retirement_undone",
                at=self._clock.now(),
            )
        return stored

    async def _reserve(self, user_id: str, qty_wh: int, reason: str) -> RetirementRow:
        async with self._db.write() as session:
            energy = await balance_for_update(
                session, user_id, Asset.ENERGY, lock=self._db.locks_rows
            )
            available = await repo.consumed_wh(session, user_id) - await repo.retired_wh(
                session, user_id
            )
            if qty_wh > available:
                raise RetirementExceedsConsumptionError(
                    "retirement exceeds unretired consumption",
                    requested_wh=qty_wh,
                    available_wh=available,
                )
            if energy.free < qty_wh:
                raise InsufficientBalanceError(
                    "free energy balance does not cover the retirement",
                    asset=Asset.ENERGY.value,
                    free=energy.free,
                    required=qty_wh,
                )
            energy.free -= qty_wh
            journal.record(
                session,
                journal.entry(
                    user_id, Asset.ENERGY.value, -qty_wh, kind="retirement", at=self._clock.now()
                ),
            )
            row = RetirementRow(
                user_id=user_id,
                wh=qty_wh,
                reason=reason,
                status=RETIREMENT_PENDING,
                tx_hash=None,
                created_at=self._clock.now(),
            )
            session.add(row)
        return row
