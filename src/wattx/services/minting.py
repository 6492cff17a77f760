"""Minting: verified surplus of meters becomes energy tokens, one oracle batch per run.

For every active meter with per-epoch energies (``meter_epoch_energy``),
:func:`wattx.metering.minting.compute_mint` decides what to mint since the
meter's watermark, up to the last ended epoch. All meters' mints go in one
``MeterOracle.submit`` transaction (period = that epoch); the tokens are then
deposited into the Marketplace for their owners (custodial keys), and in one
database transaction the mints are recorded with the transaction hash, the
watermarks move and the owners' free energy rises.

A crash after the mint transaction loses nothing and mints nothing twice:
the oracle only accepts increasing periods, so the next run sees the meter's
period on chain, takes the mint from the ``ReadingMinted`` event and records
it instead of minting again.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select

from wattx.bus.events import Event, EventType
from wattx.bus.port import EventBus
from wattx.domain.epochs import EpochClock, EpochSchedule
from wattx.domain.errors import ConflictError
from wattx.metering.intervals import EpochEnergy
from wattx.metering.minting import MintPolicy, MintWatermark, compute_mint
from wattx.services.chain import ChainAccounts, meter_key
from wattx.services.ledger import credit
from wattx.settlement.port import Asset as ChainAsset
from wattx.settlement.port import MeterMint
from wattx.store import settlement as repo
from wattx.store.balances import Asset
from wattx.store.db import Database
from wattx.store.models import MeterRow
from wattx.store.models_settlement import ChainMintRow, MintWatermarkRow
from wattx.units import wh_to_energy_base_units

_SECONDS_PER_DAY = 86_400
_SECONDS_PER_HOUR = 3_600


class EpochNotEndedError(ConflictError):
    code = "epoch_not_ended"
    title = "Only ended epochs can be minted for"


@dataclass(frozen=True, slots=True)
class PlannedMint:
    meter_id: str
    owner_id: str
    address: str
    wh: int
    watermark: MintWatermark


class MintingService:
    def __init__(
        self,
        db: Database,
        accounts: ChainAccounts,
        bus: EventBus,
        clock: EpochClock,
        schedule: EpochSchedule,
        policy: MintPolicy,
    ) -> None:
        self._db = db
        self._accounts = accounts
        self._bus = bus
        self._clock = clock
        self._schedule = schedule
        self._policy = policy
        self._running = asyncio.Lock()

    async def mints_of(
        self, owner_id: str | None, *, limit: int, offset: int
    ) -> list[ChainMintRow]:
        """One owner's mints, newest first (``None``: everyone's)."""
        async with self._db.read() as session:
            return await repo.list_mints(session, owner_id=owner_id, limit=limit, offset=offset)

    async def mint_due(self) -> list[ChainMintRow]:
        """Mint for every epoch that has ended."""
        return await self.mint_through(self._schedule.epoch_id_at(self._clock.now()) - 1)

    async def mint_through(self, through_epoch: int) -> list[ChainMintRow]:
        """Mint each active meter's surplus up to ``through_epoch`` (an ended epoch)."""
        current = self._schedule.epoch_id_at(self._clock.now())
        if through_epoch >= current:
            raise EpochNotEndedError(f"epoch {through_epoch} has not ended", epoch_id=through_epoch)
        async with self._running:
            plans = await self._plan(through_epoch)
            if not plans:
                return []
            chain = self._accounts.chain
            fresh: list[PlannedMint] = []
            for plan in plans:
                period = await self._accounts.run(
                    chain.view, "MeterOracle", "last_period", meter_key(plan.meter_id)
                )
                if int(period) < through_epoch:
                    fresh.append(plan)
            tx_hash = (
                await self._recovered_tx(plans, through_epoch) if len(fresh) < len(plans) else ""
            )
            if fresh:
                result = await self._accounts.run(
                    chain.mint_readings,
                    [
                        MeterMint(meter_key(p.meter_id), through_epoch, p.address, p.wh)
                        for p in fresh
                    ],
                )
                tx_hash = result.tx_hash
            self_custody = await self._deposit(plans)
            return await self._record(plans, through_epoch, tx_hash, self_custody)

    async def _plan(self, through_epoch: int) -> list[PlannedMint]:
        async with self._db.read() as session:
            meters = list(
                await session.scalars(select(MeterRow).where(MeterRow.status == "active"))
            )
        plans: list[PlannedMint] = []
        for meter in meters:
            async with self._db.read() as session:
                stored = await repo.watermark(session, meter.id)
                first = await repo.first_energy_epoch(session, meter.id)
                if first is None:
                    continue
                mark = (
                    MintWatermark(stored.last_mint_epoch, stored.carried_wh)
                    if stored
                    else MintWatermark(first - 1)
                )
                rows = await repo.meter_energies(
                    session, meter.id, after_epoch=mark.last_mint_epoch, through_epoch=through_epoch
                )
            decision = compute_mint(
                mark,
                [EpochEnergy(r.epoch_id, r.import_wh, r.verified_export_wh) for r in rows],
                through_epoch=through_epoch,
                rated_capacity_w=meter.rated_capacity_w,
                schedule=self._schedule,
                policy=self._policy,
            )
            if decision.mint_wh <= 0:
                continue
            address = await self._accounts.ensure(meter.owner_id)
            # The oracle's per-submission limit is a day at rated power; the
            # exact cap for the time since the last mint is compute_mint's.
            rated_wh = meter.rated_capacity_w * _SECONDS_PER_DAY // _SECONDS_PER_HOUR
            await self._accounts.ensure_meter(meter.id, address, meter.zone_id, rated_wh)
            plans.append(
                PlannedMint(meter.id, meter.owner_id, address, decision.mint_wh, decision.watermark)
            )
        return plans

    async def _recovered_tx(self, plans: list[PlannedMint], through_epoch: int) -> str:
        """The transaction of a mint sent before a crash, from its ``ReadingMinted`` events."""
        keys = {meter_key(p.meter_id) for p in plans}
        events = await self._accounts.run(self._accounts.chain.events_since, 0)
        for event in events:
            if (
                event.name == "ReadingMinted"
                and bytes(event.args["meter_id"]) in keys
                and int(event.args["period"]) == through_epoch
            ):
                return event.tx_hash
        return ""

    async def _deposit(self, plans: list[PlannedMint]) -> set[str]:
        """Move each custodial owner's newly minted tokens from their wallet into the
        Marketplace; return the self-custody owners, whose tokens stay in their own
        wallet until they deposit them (the Deposit event then credits them)."""
        per_owner: defaultdict[str, int] = defaultdict(int)
        for plan in plans:
            per_owner[plan.owner_id] += wh_to_energy_base_units(plan.wh)
        chain = self._accounts.chain
        self_custody: set[str] = set()
        for owner_id, amount in per_owner.items():
            _address, signer = await self._accounts.custody_signer(owner_id)
            if signer is None:
                self_custody.add(owner_id)
                continue
            held = await self._accounts.run(chain.wallet_balance, signer.address, ChainAsset.ENERGY)
            # After a crash the deposit may have happened already: deposit only
            # what is still in the wallet.
            to_deposit = min(amount, held)
            if to_deposit:
                await self._accounts.run(chain.deposit, signer, ChainAsset.ENERGY, to_deposit)
        return self_custody

    async def _record(
        self,
        plans: list[PlannedMint],
        through_epoch: int,
        tx_hash: str,
        self_custody: set[str],
    ) -> list[ChainMintRow]:
        now = self._clock.now()
        rows: list[ChainMintRow] = []
        async with self._db.write() as session:
            for plan in plans:
                row = ChainMintRow(
                    meter_id=plan.meter_id,
                    epoch_id=through_epoch,
                    owner_id=plan.owner_id,
                    address=plan.address,
                    wh=plan.wh,
                    tx_hash=tx_hash,
                    created_at=now,
                )
                session.add(row)
                rows.append(row)
                mark = await repo.watermark(session, plan.meter_id)
                if mark is None:
                    session.add(
                        MintWatermarkRow(
                            meter_id=plan.meter_id,
                            last_mint_epoch=plan.watermark.last_mint_epoch,
                            carried_wh=plan.watermark.carried_wh,
                        )
                    )
                else:
                    mark.last_mint_epoch = plan.watermark.last_mint_epoch
                    mark.carried_wh = plan.watermark.carried_wh
                if plan.owner_id not in self_custody:
                    await credit(
                        session, plan.owner_id, Asset.ENERGY, plan.wh, lock=self._db.locks_rows
                    )
        for row in rows:
            await self._bus.publish(
                Event(
                    EventType.TOKENS_MINTED,
                    {
                        "meter_id": row.meter_id,
                        "epoch_id": row.epoch_id,
                        "owner_id": row.owner_id,
                        "qty_wh": row.wh,
                        "tx_hash": row.tx_hash,
                    },
                    audience=frozenset({row.owner_id}),
                )
            )
        return rows
