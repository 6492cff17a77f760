"""Minting: verified surplus of meters becomes energy tokens, through a mint outbox.

For every active meter with per-epoch energies (``meter_epoch_energy``),
:func:`wattx.metering.minting.compute_mint` decides what to mint since the
meter's watermark, up to the last ended epoch. The watermarks of meters with
nothing to mint and nothing carried move past their final epochs at once (no
intent carries them). A run

1. writes a **mint intent** (``mint_intents``, status ``pending``) in its own
   short transaction: a random 32-byte id, the period (that epoch), and per
   meter its owner, address, Wh and the watermark it moves to. At most one
   intent is pending at a time (a unique slot), and no new one is planned
   while one is;
2. sends the intent as one ``MeterOracle.submit_batch(id, readings)``: the
   oracle mints an id at most once and logs ``BatchMinted(id)`` next to the
   batch's ``ReadingMinted`` events;
3. deposits the tokens into the Marketplace for custodial owners;
4. records, in one short transaction, the mints (with the transaction hash and
   the amounts the chain's events show), the intent's watermarks and the
   owners' free energy, and confirms the intent. Balance rows are locked first,
   in key order, as every multi-row writer locks them, so the record cannot
   deadlock with order commits.

Every run first finishes the pending intent, whatever epoch it is now: if the
oracle already minted its id (a crash or a failed record after sending), the
mint is adopted from the chain's events, never sent again and never recomputed
from readings that have grown since; otherwise the same intent (same amounts,
same period) is sent. A contract refusal marks the intent ``failed`` (nothing
was minted; the watermarks did not move, so the next run plans afresh); a
chain that cannot be reached leaves it pending for the next run.

The threshold is governed (``mint_threshold_wh``): a run up to epoch ``n``
uses the value of the parameter set epoch ``n`` runs under; the service's
``mint_threshold_wh`` setting is only the value the contract is deployed with
(and the threshold where no set holds the parameter).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import OrderedDict, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.exc import IntegrityError

from wattx.bus.events import Event, EventType
from wattx.bus.port import EventBus
from wattx.domain.epochs import EpochClock, EpochSchedule
from wattx.domain.errors import ConflictError
from wattx.metering.intervals import EpochEnergy
from wattx.metering.minting import MintPolicy, MintWatermark, compute_mint
from wattx.services.faults import AFTER_CHAIN_TX_MINT, fault_point
from wattx.services.onchain.chain import ChainAccounts, meter_key
from wattx.services.onchain.ledger import credit
from wattx.settlement.errors import ChainError, ContractRevertError, MintBatchAlreadyMintedError
from wattx.settlement.port import Asset as ChainAsset
from wattx.settlement.port import ChainEvent, MeterMint
from wattx.store import settlement as repo
from wattx.store.balances import Asset, lock_balances
from wattx.store.db import Database
from wattx.store.models import MeterRow
from wattx.store.models_settlement import ChainMintRow, MintIntentRow, MintWatermarkRow
from wattx.units import wh_to_energy_base_units

_log = structlog.get_logger("wattx.minting")

MintCheckpoint = Callable[[str], None]
"""Called with each step's name as a run passes it (``written``: the intent is
stored; ``sent``: the batch is mined, nothing recorded yet); crash tests raise
from it."""


def _no_checkpoint(_step: str) -> None:
    """The production service passes every step without interruption."""


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

    def as_json(self) -> list[object]:
        mark = self.watermark
        return [
            self.meter_id,
            self.owner_id,
            self.address,
            self.wh,
            mark.last_mint_epoch,
            mark.carried_wh,
        ]

    @staticmethod
    def from_json(item: list[object]) -> PlannedMint:
        meter_id, owner_id, address, wh, last_epoch, carried = item
        return PlannedMint(
            str(meter_id),
            str(owner_id),
            str(address),
            int(str(wh)),
            MintWatermark(int(str(last_epoch)), int(str(carried))),
        )


def intent_plans(intent: MintIntentRow) -> list[PlannedMint]:
    """The meters, amounts and watermarks an intent holds."""
    return [PlannedMint.from_json(item) for item in json.loads(intent.payload)]


_DEPOSITS_KEPT = 64
"""How many recent intents' deposit transactions are remembered."""


@dataclass(frozen=True, slots=True)
class _Minted:
    """What the chain minted for an intent: its transaction and Wh per meter key."""

    tx_hash: str
    block_number: int
    wh_by_meter: dict[bytes, int]


class MintingService:
    def __init__(
        self,
        db: Database,
        accounts: ChainAccounts,
        bus: EventBus,
        clock: EpochClock,
        schedule: EpochSchedule,
        policy: MintPolicy,
        *,
        checkpoint: MintCheckpoint = _no_checkpoint,
        threshold_for: Callable[[int], int | None] | None = None,
    ) -> None:
        """``threshold_for(epoch)``: the governed mint threshold of that epoch, or None
        where it has none (then ``policy``'s)."""
        self._db = db
        self._accounts = accounts
        self._bus = bus
        self._clock = clock
        self._schedule = schedule
        self._policy = policy
        self._checkpoint = checkpoint
        self._threshold_for = threshold_for
        self._running = asyncio.Lock()
        # The deposit transactions of the newest intents, oldest first. The intent's
        # record does not hold them, so a node that comes back without the blocks
        # they were in (while the mint's block survived) is found only through
        # these (:meth:`redeposit_lost`). Kept in memory: a service restart forgets
        # them.
        self._deposits: OrderedDict[str, tuple[list[PlannedMint], list[str]]] = OrderedDict()

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
        """Finish the pending intent, then mint each active meter's surplus up to
        ``through_epoch`` (an ended epoch); returns the mints recorded."""
        current = self._schedule.epoch_id_at(self._clock.now())
        if through_epoch >= current:
            raise EpochNotEndedError(f"epoch {through_epoch} has not ended", epoch_id=through_epoch)
        async with self._running:
            recorded: list[ChainMintRow] = []
            async with self._db.read() as session:
                pending = await repo.pending_mint_intents(session)
            for intent in pending:
                recorded.extend(await self._complete(intent))
            fresh = await self._write_intent(through_epoch)
            if fresh is not None:
                recorded.extend(await self._complete(fresh))
            return recorded

    async def pending_intents(self) -> list[MintIntentRow]:
        async with self._db.read() as session:
            return await repo.pending_mint_intents(session)

    # -- 1. the intent -------------------------------------------------------

    async def _write_intent(self, through_epoch: int) -> MintIntentRow | None:
        plans, idle = await self._plan(through_epoch)
        if idle:
            # Meters with nothing to mint move their watermarks at once: no intent
            # carries them, and the next run reads their energy from here on.
            async with self._db.write() as session:
                await repo.advance_idle_watermarks(session, idle)
        if not plans:
            return None
        start_block = await self._accounts.run(self._accounts.chain.block_number)
        row = MintIntentRow(
            id="0x" + secrets.token_bytes(32).hex(),
            period=through_epoch,
            status=repo.MINT_PENDING,
            pending_slot=1,
            payload=json.dumps([p.as_json() for p in plans], separators=(",", ":")),
            total_wh=sum(p.wh for p in plans),
            start_block=start_block,
            attempts=0,
            last_error=None,
            tx_hash=None,
            block_number=None,
            created_at=self._clock.now(),
            confirmed_at=None,
        )
        try:
            async with self._db.write() as session:
                session.add(row)
        except IntegrityError:
            # Another worker's intent is pending: it is finished first, by its run
            # or by the next one here.
            return None
        self._checkpoint("written")
        return row

    def policy_for(self, epoch_id: int) -> MintPolicy:
        """The mint policy of a run up to ``epoch_id``: its governed threshold (at least
        1 Wh), else the configured one."""
        governed = self._threshold_for(epoch_id) if self._threshold_for else None
        if governed is None:
            return self._policy
        return MintPolicy(threshold_wh=max(governed, 1))

    async def _plan(
        self, through_epoch: int
    ) -> tuple[list[PlannedMint], list[tuple[str, int | None, int]]]:
        """The mints to send, and the watermarks of meters with nothing to mint that move
        (meter, last mint epoch read or None, epoch it moves to)."""
        async with self._db.read() as session:
            meters = await repo.active_meters_for_minting(session, through_epoch)
        decided: list[tuple[MeterRow, int, MintWatermark]] = []
        idle: list[tuple[str, int | None, int]] = []
        policy = self.policy_for(through_epoch)
        for meter, stored, first, rows in meters:
            if first is None:
                continue
            mark = (
                MintWatermark(stored.last_mint_epoch, stored.carried_wh)
                if stored
                else MintWatermark(first - 1)
            )
            decision = compute_mint(
                mark,
                [EpochEnergy(r.epoch_id, r.import_wh, r.verified_export_wh) for r in rows],
                through_epoch=through_epoch,
                rated_capacity_w=meter.rated_capacity_w,
                schedule=self._schedule,
                policy=policy,
            )
            if decision.mint_wh > 0:
                decided.append((meter, decision.mint_wh, decision.watermark))
            elif decision.watermark != mark:
                read = stored.last_mint_epoch if stored else None
                idle.append((meter.id, read, decision.watermark.last_mint_epoch))
        addresses = await self._accounts.ensure_many({meter.owner_id for meter, _, _ in decided})
        # The oracle's per-submission limit is a day at rated power; the exact
        # cap for the time since the last mint is compute_mint's.
        await self._accounts.ensure_meters(
            [
                (
                    meter.id,
                    addresses[meter.owner_id],
                    meter.zone_id,
                    meter.rated_capacity_w * _SECONDS_PER_DAY // _SECONDS_PER_HOUR,
                )
                for meter, _, _ in decided
            ]
        )
        plans = [
            PlannedMint(meter.id, meter.owner_id, addresses[meter.owner_id], mint_wh, watermark)
            for meter, mint_wh, watermark in decided
        ]
        return plans, idle

    # -- 2. the batch on chain -------------------------------------------------

    async def _complete(self, intent: MintIntentRow) -> list[ChainMintRow]:
        """Send the intent's batch unless the oracle has it already, then record it."""
        plans = intent_plans(intent)
        batch_id = bytes.fromhex(intent.id[2:])
        chain = self._accounts.chain
        try:
            if await self._accounts.run(chain.is_batch_minted, batch_id):
                minted = await self._adopt(intent, batch_id)
            else:
                # Registered before the intent was written; again here in case the
                # chain lost the registration (a node restarted from older state).
                await self._ensure_meters(plans)
                mints = [
                    MeterMint(meter_key(p.meter_id), intent.period, p.address, p.wh) for p in plans
                ]
                try:
                    result = await self._accounts.run(
                        lambda: chain.mint_readings(mints, batch_id=batch_id)
                    )
                except MintBatchAlreadyMintedError:
                    minted = await self._adopt(intent, batch_id)
                else:
                    minted = _Minted(result.tx_hash, result.block_number, _minted_wh(result.events))
                    fault_point(AFTER_CHAIN_TX_MINT)
                    self._checkpoint("sent")
        except ContractRevertError as exc:
            await self._fail(intent, exc)
            raise
        except ChainError as exc:
            await self._note_attempt(intent, exc)
            raise
        actual = [
            PlannedMint(
                p.meter_id,
                p.owner_id,
                p.address,
                minted.wh_by_meter.get(meter_key(p.meter_id), 0),
                p.watermark,
            )
            for p in plans
        ]
        for plan, done in zip(plans, actual, strict=True):
            if plan.wh != done.wh:
                _log.error(
                    "mint_amount_differs",
                    intent_id=intent.id,
                    meter_id=plan.meter_id,
                    intended_wh=plan.wh,
                    minted_wh=done.wh,
                )
        self_custody = await self._deposit(actual, intent_id=intent.id)
        return await self._record(intent, actual, minted, self_custody)

    async def resend_lost(self, intent: MintIntentRow) -> str:
        """Mint a recorded intent again on a chain that lost its transaction (a node
        restarted from older state): same id, period and recorded amounts, deposited
        again; the records keep their amounts and take the new transaction hash.
        Returns that hash."""
        async with self._running:
            async with self._db.read() as session:
                recorded = {
                    m.meter_id: m.wh for m in await repo.mints_of_intent(session, intent.id)
                }
            plans = [
                PlannedMint(
                    p.meter_id, p.owner_id, p.address, recorded.get(p.meter_id, 0), p.watermark
                )
                for p in intent_plans(intent)
            ]
            batch_id = bytes.fromhex(intent.id[2:])
            chain = self._accounts.chain
            if await self._accounts.run(chain.is_batch_minted, batch_id):
                minted = await self._adopt(intent, batch_id, from_block=0)
            else:
                for plan in plans:
                    await self._ensure_meter(plan)
                mints = [
                    MeterMint(meter_key(p.meter_id), intent.period, p.address, p.wh) for p in plans
                ]
                result = await self._accounts.run(
                    lambda: chain.mint_readings(mints, batch_id=batch_id)
                )
                minted = _Minted(result.tx_hash, result.block_number, _minted_wh(result.events))
            await self._deposit(plans, intent_id=intent.id)
            async with self._db.write() as session:
                row = await repo.mint_intent(session, intent.id, lock=self._db.locks_rows)
                assert row is not None
                row.tx_hash = minted.tx_hash
                row.block_number = minted.block_number
                for mint in await repo.mints_of_intent(session, intent.id):
                    mint.tx_hash = minted.tx_hash
            _log.warning("mint_resent", intent_id=intent.id, tx_hash=minted.tx_hash)
            return minted.tx_hash

    async def _ensure_meter(self, plan: PlannedMint) -> None:
        await self._ensure_meters([plan])

    async def _ensure_meters(self, plans: Sequence[PlannedMint]) -> None:
        """Register the plans' meters (and their zones) on chain where they are not yet:
        their rows and registrations are read in one query each, whatever their number."""
        async with self._db.read() as session:
            meters = await repo.meters_by_id(session, [p.meter_id for p in plans])
        await self._accounts.ensure_meters(
            [
                (
                    meter.id,
                    plan.address,
                    meter.zone_id,
                    meter.rated_capacity_w * _SECONDS_PER_DAY // _SECONDS_PER_HOUR,
                )
                for plan in plans
                if (meter := meters.get(plan.meter_id)) is not None
            ]
        )

    async def _adopt(
        self, intent: MintIntentRow, batch_id: bytes, *, from_block: int | None = None
    ) -> _Minted:
        """The oracle minted this intent before (its reply was lost): what its events say."""
        chain = self._accounts.chain
        start = intent.start_block if from_block is None else from_block
        events = await self._accounts.run(chain.events_since, start)
        batch = next(
            (
                e
                for e in events
                if e.name == "BatchMinted" and bytes(e.args["batch_id"]) == batch_id
            ),
            None,
        )
        if batch is None:
            raise ChainError(
                f"the oracle minted batch {intent.id} but its event is not found",
                intent_id=intent.id,
            )
        in_tx = [e for e in events if e.tx_hash == batch.tx_hash]
        _log.warning("mint_adopted", intent_id=intent.id, tx_hash=batch.tx_hash)
        return _Minted(batch.tx_hash, batch.block_number, _minted_wh(in_tx))

    async def _note_attempt(self, intent: MintIntentRow, exc: ChainError) -> None:
        async with self._db.write() as session:
            row = await repo.mint_intent(session, intent.id, lock=self._db.locks_rows)
            assert row is not None
            row.attempts += 1
            row.last_error = f"{exc.code}: {exc}"
        _log.warning("mint_retry", intent_id=intent.id, error=f"{exc.code}: {exc}")

    async def _fail(self, intent: MintIntentRow, exc: ChainError) -> None:
        async with self._db.write() as session:
            row = await repo.mint_intent(session, intent.id, lock=self._db.locks_rows)
            assert row is not None
            row.status = repo.MINT_FAILED
            row.pending_slot = None
            row.attempts += 1
            row.last_error = f"{exc.code}: {exc}"
        _log.error("mint_failed", intent_id=intent.id, error=f"{exc.code}: {exc}")

    # -- 3. deposits -------------------------------------------------------------

    def newest_deposit_tx(self) -> str | None:
        """The newest deposit transaction a mint made in this process, if any."""
        for _plans, tx_hashes in reversed(self._deposits.values()):
            if tx_hashes:
                return tx_hashes[-1]
        return None

    async def redeposit_lost(self, known: Callable[[str], Awaitable[bool]]) -> int:
        """Deposit again the minted tokens of each recent intent whose deposit
        transaction the node no longer knows (its mint survived, the deposit's block
        did not); returns how many intents. Only what is still in the owner's wallet
        moves, at most the minted amount."""
        repaired = 0
        async with self._running:
            for intent_id, (plans, tx_hashes) in list(self._deposits.items()):
                lost = [tx for tx in tx_hashes if not await known(tx)]
                if lost:
                    _log.warning("mint_deposit_lost", intent_id=intent_id, tx_hashes=lost)
                    await self._deposit(plans, intent_id=intent_id)
                    repaired += 1
        return repaired

    async def _deposit(self, plans: list[PlannedMint], *, intent_id: str) -> set[str]:
        """Move each custodial owner's newly minted tokens from their wallet into the
        Marketplace; return the self-custody owners, whose tokens stay in their own
        wallet until they deposit them (the Deposit event then credits them)."""
        per_owner: defaultdict[str, int] = defaultdict(int)
        for plan in plans:
            per_owner[plan.owner_id] += wh_to_energy_base_units(plan.wh)
        chain = self._accounts.chain
        sent: list[str] = []
        signers = await self._accounts.custody_signers(per_owner)
        self_custody = {owner_id for owner_id in per_owner if signers[owner_id][1] is None}
        custodial = [
            (signer, amount)
            for owner_id, amount in per_owner.items()
            if (signer := signers[owner_id][1]) is not None
        ]

        def deposit_all() -> None:
            # One trip to the chain's worker thread for every owner, in order.
            for signer, amount in custodial:
                held = chain.wallet_balance(signer.address, ChainAsset.ENERGY)
                # After a crash the deposit may have happened already: deposit only
                # what is still in the wallet.
                to_deposit = min(amount, held)
                if to_deposit:
                    sent.append(chain.deposit(signer, ChainAsset.ENERGY, to_deposit).tx_hash)

        await self._accounts.run(deposit_all)
        self._deposits[intent_id] = (plans, sent)
        self._deposits.move_to_end(intent_id)
        while len(self._deposits) > _DEPOSITS_KEPT:
            self._deposits.popitem(last=False)
        return self_custody

    # -- 4. the record ------------------------------------------------------------

    async def _record(
        self,
        intent: MintIntentRow,
        plans: list[PlannedMint],
        minted: _Minted,
        self_custody: set[str],
    ) -> list[ChainMintRow]:
        now = self._clock.now()
        rows: list[ChainMintRow] = []
        async with self._db.write() as session:
            row = await repo.mint_intent(session, intent.id, lock=self._db.locks_rows)
            if row is None or row.status != repo.MINT_PENDING:
                return []  # recorded by another run meanwhile
            # Every balance row this transaction changes, locked at once in key
            # order (the order order commits use), before anything else.
            await lock_balances(
                session,
                [(p.owner_id, Asset.ENERGY) for p in plans if p.owner_id not in self_custody],
                lock=self._db.locks_rows,
            )
            for plan in plans:
                mint = ChainMintRow(
                    meter_id=plan.meter_id,
                    epoch_id=row.period,
                    owner_id=plan.owner_id,
                    address=plan.address,
                    wh=plan.wh,
                    tx_hash=minted.tx_hash,
                    created_at=now,
                    intent_id=row.id,
                )
                session.add(mint)
                rows.append(mint)
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
                        session,
                        plan.owner_id,
                        Asset.ENERGY,
                        plan.wh,
                        lock=self._db.locks_rows,
                        kind="mint",
                        at=now,
                        ref=minted.tx_hash,
                    )
            # The overview's running total, in the transaction that records the mints.
            await repo.add_to_ledger_total(session, repo.MINTED_WH, sum(p.wh for p in plans))
            row.status = repo.MINT_CONFIRMED
            row.pending_slot = None
            row.tx_hash = minted.tx_hash
            row.block_number = minted.block_number
            row.attempts += 1
            row.last_error = None
            row.confirmed_at = now
        for mint in rows:
            await self._bus.publish(
                Event(
                    EventType.TOKENS_MINTED,
                    {
                        "meter_id": mint.meter_id,
                        "epoch_id": mint.epoch_id,
                        "owner_id": mint.owner_id,
                        "qty_wh": mint.wh,
                        "tx_hash": mint.tx_hash,
                    },
                    audience=frozenset({mint.owner_id}),
                )
            )
        return rows


def _minted_wh(events: tuple[ChainEvent, ...] | list[ChainEvent]) -> dict[bytes, int]:
    """Wh per meter key from a batch's ``ReadingMinted`` events."""
    minted: dict[bytes, int] = {}
    for event in events:
        if event.name == "ReadingMinted":
            key = bytes(event.args["meter_id"])
            minted[key] = minted.get(key, 0) + int(event.args["wh"])
    return minted
