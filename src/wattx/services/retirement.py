"""Retirement: burning energy tokens against one's own metered consumption.

A participant may retire at most what their meters imported, less what they
retired before. The tokens leave the off-chain free balance and a pending
retirement is recorded in one transaction (so two requests cannot both spend
the same consumption); then the Marketplace pays them out to the
participant's address and ``EnergyToken.retire`` burns them; the record gets
the transaction hash. If the chain refuses, both are undone.
"""

from __future__ import annotations

from wattx.domain.epochs import EpochClock
from wattx.domain.errors import ConflictError
from wattx.services.chain import ChainAccounts
from wattx.services.errors import InsufficientBalanceError, InvalidAmountError
from wattx.services.ledger import credit
from wattx.settlement.port import Asset as ChainAsset
from wattx.store import settlement as repo
from wattx.store.balances import Asset, balance_for_update
from wattx.store.db import Database
from wattx.store.models_settlement import RetirementRow
from wattx.units import wh_to_energy_base_units

RETIREMENT_PENDING = "pending"
RETIREMENT_CONFIRMED = "confirmed"


class RetirementExceedsConsumptionError(ConflictError):
    code = "retirement_exceeds_consumption"
    title = "Cannot retire more than your meters consumed"


class RetirementService:
    def __init__(self, db: Database, accounts: ChainAccounts, clock: EpochClock) -> None:
        self._db = db
        self._accounts = accounts
        self._clock = clock

    async def retire(self, user_id: str, qty_wh: int, reason: str) -> RetirementRow:
        if qty_wh <= 0:
            raise InvalidAmountError("amount must be positive", amount=qty_wh)
        signer = await self._accounts.signer_of(user_id)
        row = await self._reserve(user_id, qty_wh, reason)
        chain = self._accounts.chain
        amount = wh_to_energy_base_units(qty_wh)
        try:
            await self._accounts.run(chain.withdraw, signer, ChainAsset.ENERGY, amount)
            result = await self._accounts.run(chain.retire, signer, amount, reason)
        except BaseException:
            await self._undo(row.id, user_id, qty_wh)
            raise
        async with self._db.write() as session:
            stored = await session.get(RetirementRow, row.id)
            assert stored is not None
            stored.status = RETIREMENT_CONFIRMED
            stored.tx_hash = result.tx_hash
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

    async def _undo(self, retirement_id: int, user_id: str, qty_wh: int) -> None:
        async with self._db.write() as session:
            stored = await session.get(RetirementRow, retirement_id)
            if stored is not None:
                await session.delete(stored)
            await credit(session, user_id, Asset.ENERGY, qty_wh, lock=self._db.locks_rows)
