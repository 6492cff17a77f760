"""Epoch settlement through an outbox, proofs of inclusion, and the chain event indexer.

What needs settling is derived from the database alone: a closed epoch with
trades whose delivery has ended and that has no outbox row. The worker

1. builds the batch from the epoch's trades as stored (never from the engine)
   and writes it to the outbox (status ``pending``) in one transaction;
2. asks the chain whether the epoch is settled already (a retry after a crash
   that happened after sending must not pay twice); if not, sends
   ``settle_epoch`` in a worker thread;
3. marks the row ``confirmed`` with the transaction hash and block.

The epoch's trades and its ``epochs`` row carry the outcome too
(``settlement_status``: ``pending`` from step 1, then ``settled`` with
``settlement_tx_hash``, or ``failed``), written in the same transaction as the
outbox row's change, so they never disagree with it.

A crash between any two steps leaves the row pending (or absent, and then it
is derived again), and the next run finishes it. A chain that cannot be
reached leaves it pending with an exponential backoff, however long that
takes. A batch the chain refuses (a contract revert, e.g. a seller whose
energy is not on chain) is retried with the same backoff up to
``max_refusals`` times and then fails for good; so does a batch whose root
differs from the one on chain. A batch that fails for good is marked
``failed`` with its reason, raises a ``settlement_failed`` alert (in
``GET /alerts``) and counts in ``wattx_settlements_failed_total``. An
operator asking to settle an epoch now hears of a refusal at once
(``409 settlement_refused``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import structlog
from prometheus_client import Counter

from wattx.bus.events import Event, EventType
from wattx.bus.port import EventBus
from wattx.devices.allocation import DeliveryOutcome
from wattx.devices.errors import DeliveryBalanceShortError, DeliveryGracePendingError
from wattx.domain.epochs import EpochClock, EpochSchedule
from wattx.domain.errors import ConflictError
from wattx.market.errors import TradeNotFoundError
from wattx.services.errors import EpochNotClosedError
from wattx.services.faults import AFTER_CHAIN_TX_SETTLE, fault_point
from wattx.services.funds.custody import apply_self_custody_deposits
from wattx.services.measurement.delivery import DeliveryService
from wattx.services.onchain.chain import ChainAccounts
from wattx.services.onchain.chain_history import ChainHistoryCheck
from wattx.services.onchain.minting import MintingService
from wattx.services.onchain.retirement import RetirementService
from wattx.services.periodic import PeriodicTask
from wattx.services.principal import Principal
from wattx.settlement.batch import EpochBatch, MeasuredDelivery, build_epoch_batch
from wattx.settlement.contract_chain import LOG_WINDOW_BLOCKS, block_windows
from wattx.settlement.errors import (
    ChainError,
    ContractRevertError,
    EpochAlreadySettledError,
    InsufficientBalanceError,
)
from wattx.settlement.leaves import TradeLeaf
from wattx.settlement.port import ChainEvent
from wattx.store import settlement as repo
from wattx.store.db import Database
from wattx.store.models import TradeRow
from wattx.store.models_devices import TradeDeliveryRow
from wattx.store.models_metering import MeterAlertRow
from wattx.store.models_settlement import SettlementOutboxRow
from wattx.store.trades import trade_from_row

_log = structlog.get_logger("wattx.settlement")

SETTLEMENT_FAILED_ALERT = "settlement_failed"
GRANTED_ENERGY_HINT = (
    "an account's balance on chain does not cover its side of the batch; energy "
    "granted with POST /admin/users/{id}/energy-grants exists off chain only, so an "
    "epoch in which it was sold cannot settle: sell energy minted from metered export"
)
_MAX_BACKOFF_S = 3_600

Checkpoint = Callable[[str], None]
"""Called with each step's name as the worker passes it (``written``, ``checked``,
``sent``); the crash tests raise from it."""


class EpochNotEndedError(ConflictError):
    code = "epoch_not_ended"
    title = "The epoch's delivery has not ended"


class NothingToSettleError(ConflictError):
    code = "nothing_to_settle"
    title = "The epoch has no trades to settle"


class TradeNotSettledError(ConflictError):
    code = "trade_not_settled"
    title = "The trade's epoch is not settled on chain yet"


class SettlementRefusedError(ConflictError):
    code = "settlement_refused"
    title = "The chain refused the epoch's settlement batch"


class SettlementRootMismatchError(ConflictError):
    code = "settlement_root_mismatch"
    title = "The chain holds another Merkle root for this epoch"


@dataclass(frozen=True, slots=True)
class TradeProof:
    trade_id: str
    epoch_id: int
    leaf: bytes
    proof: list[bytes]
    root: bytes
    tx_hash: str | None
    verified_on_chain: bool


def _no_checkpoint(_step: str) -> None:
    """The production worker passes every step without interruption."""


def _parties(trades: Iterable[TradeRow]) -> dict[str, frozenset[str]]:
    return {t.id: frozenset({t.buyer, t.seller}) for t in trades}


def _batch_payload(batch: EpochBatch) -> str:
    return json.dumps(
        {
            "deltas": [[d.address, d.energy, d.credit] for d in batch.deltas],
            "fee_energy": batch.fee_energy,
            "fee_credit": batch.fee_credit,
            "trade_ids": list(batch.trade_ids),
        },
        separators=(",", ":"),
    )


class SettlementService:
    """Settles closed epochs on chain through the outbox; serves proofs; indexes events."""

    def __init__(
        self,
        db: Database,
        accounts: ChainAccounts,
        bus: EventBus,
        clock: EpochClock,
        schedule: EpochSchedule,
        *,
        retry_s: int = 10,
        max_refusals: int = 5,
        failures: Counter | None = None,
        checkpoint: Checkpoint = _no_checkpoint,
        delivery: DeliveryService | None = None,
        log_window_blocks: int = LOG_WINDOW_BLOCKS,
    ) -> None:
        """``log_window_blocks``: the most blocks one read of contract events spans."""
        self._db = db
        self._accounts = accounts
        self._bus = bus
        self._clock = clock
        self._schedule = schedule
        self._retry_s = retry_s
        self._max_refusals = max_refusals
        self._failures = failures
        self._checkpoint = checkpoint
        self._delivery = delivery
        # One settlement run at a time in this process; across processes the
        # outbox row and the chain's once-only rule keep it safe.
        self._running = asyncio.Lock()
        self._log_window_blocks = log_window_blocks

    @property
    def chain_accounts(self) -> ChainAccounts:
        return self._accounts

    @property
    def database(self) -> Database:
        return self._db

    @property
    def clock(self) -> EpochClock:
        return self._clock

    # -- the worker ----------------------------------------------------------

    async def settle_due(self) -> list[SettlementOutboxRow]:
        """Write outbox rows for every ended, unsettled epoch, then send what is due."""
        async with self._running:
            now = self._clock.now()
            async with self._db.read() as session:
                missing = await repo.epochs_without_outbox(
                    session, ended_before=self._schedule.epoch_id_at(now)
                )
            for epoch_id in missing:
                if self._delivery is not None:
                    try:
                        await self._delivery.check_ready(epoch_id)
                    except DeliveryGracePendingError:
                        continue
                try:
                    await self._write_outbox(epoch_id)
                except DeliveryBalanceShortError:
                    continue  # a seller spent credit meanwhile: measured again next tick
            async with self._db.read() as session:
                due = await repo.due_outbox(session, now)
            return [await self._send(epoch_id) for epoch_id in due]

    async def settle_now(self, epoch_id: int) -> SettlementOutboxRow:
        """Settle one closed epoch whose delivery has ended now, without waiting for the
        worker's next tick or a backoff.

        A refusal by the chain is recorded on the outbox row like the worker's
        (an attempt, or ``failed`` once refusals run out) and raised as
        :class:`SettlementRefusedError`, which says why.
        """
        async with self._running:
            async with self._db.read() as session:
                if not await repo.is_epoch_closed(session, epoch_id):
                    raise EpochNotClosedError(f"epoch {epoch_id} is not closed", epoch_id=epoch_id)
            end = self._schedule.epoch(epoch_id).end
            if self._clock.now() < end:
                raise EpochNotEndedError(
                    f"epoch {epoch_id} is delivered until {end.isoformat()}",
                    epoch_id=epoch_id,
                    delivery_ends_at=end.isoformat(),
                )
            async with self._db.read() as session:
                row = await repo.outbox_entry(session, epoch_id)
            if row is None:
                if self._delivery is not None:
                    await self._delivery.check_ready(epoch_id)
                await self._write_outbox(epoch_id)
            refusals: list[ContractRevertError] = []
            row = await self._send(epoch_id, refusals=refusals)
        if refusals:
            refused = refusals[0]
            raise SettlementRefusedError(
                f"the chain refused epoch {epoch_id}'s batch ({refused.code}): "
                + _explain(refused),
                epoch_id=epoch_id,
                chain_code=refused.code,
                status=row.status,
                attempts=row.attempts,
                max_refusals=self._max_refusals,
                next_attempt_at=row.next_attempt_at.isoformat()
                if row.status == repo.OUTBOX_PENDING and row.next_attempt_at is not None
                else None,
            )
        return row

    async def outbox(self, epoch_id: int) -> SettlementOutboxRow | None:
        async with self._db.read() as session:
            return await repo.outbox_entry(session, epoch_id)

    async def _batch_for(
        self, epoch_id: int, measured: Mapping[str, MeasuredDelivery] | None = None
    ) -> EpochBatch:
        """The epoch's batch; measured deliveries as stored unless ``measured`` is given."""
        async with self._db.read() as session:
            trades = [trade_from_row(t) for t in await repo.epoch_trades(session, epoch_id)]
            if measured is None and self._delivery is not None:
                measured = await self._delivery.stored(session, epoch_id)
        if not trades:
            raise NothingToSettleError(f"epoch {epoch_id} has no trades", epoch_id=epoch_id)
        await self._accounts.ensure_many({t.buyer for t in trades} | {t.seller for t in trades})
        book = await self._accounts.address_book()
        return build_epoch_batch(
            epoch_id, trades, book, self._accounts.chain.deployment.fee_account, measured
        )

    async def _write_outbox(self, epoch_id: int) -> None:
        async with self._db.read() as session:
            trades = await repo.epoch_trades(session, epoch_id)
        outcomes: dict[str, DeliveryOutcome] = {}
        if self._delivery is not None:
            outcomes = await self._delivery.measure(epoch_id, [trade_from_row(t) for t in trades])
        batch = await self._batch_for(
            epoch_id,
            {
                trade_id: MeasuredDelivery(o.delivered_wh, o.refund, o.imbalance_charge)
                for trade_id, o in outcomes.items()
            },
        )
        start_block = await self._accounts.run(self._accounts.chain.block_number)
        now = self._clock.now()
        recorded: list[TradeDeliveryRow] = []
        async with self._db.write() as session:
            if await repo.outbox_entry(session, epoch_id, lock=self._db.locks_rows) is not None:
                return
            if self._delivery is not None and outcomes:
                # Same transaction as the outbox row: the off-chain books move
                # exactly when the batch that moves the chain's is written.
                recorded = await self._delivery.record(
                    session, epoch_id, [trade_from_row(t) for t in trades], outcomes
                )
            session.add(
                SettlementOutboxRow(
                    epoch_id=epoch_id,
                    status=repo.OUTBOX_PENDING,
                    merkle_root="0x" + batch.merkle_root.hex(),
                    trade_count=batch.trade_count,
                    payload=_batch_payload(batch),
                    volume_wh=sum(t.qty_wh for t in trades),
                    value=sum(t.value for t in trades),
                    fees=batch.fee_credit,
                    attempts=0,
                    next_attempt_at=now,
                    last_error=None,
                    tx_hash=None,
                    # Until confirmed: the block from which to look for the
                    # settlement should a crash hide its receipt.
                    block_number=start_block,
                    created_at=now,
                    confirmed_at=None,
                )
            )
            # Same transaction as the outbox row: the trades show pending exactly
            # when there is a batch to send.
            await repo.mark_epoch_settlement(session, epoch_id, repo.SETTLEMENT_PENDING)
        if self._delivery is not None:
            await self._delivery.publish(recorded, _parties(trades))
        self._checkpoint("written")

    async def _send(
        self, epoch_id: int, *, refusals: list[ContractRevertError] | None = None
    ) -> SettlementOutboxRow:
        row = await self.outbox(epoch_id)
        assert row is not None, "the outbox row is written before it is sent"
        if row.status != repo.OUTBOX_PENDING:
            return row
        batch = await self._batch_for(epoch_id)
        if "0x" + batch.merkle_root.hex() != row.merkle_root:
            return await self._fail(epoch_id, "the trades no longer match the written batch")
        chain = self._accounts.chain
        try:
            settled = await self._accounts.run(chain.is_settled, epoch_id)
            self._checkpoint("checked")
            if settled:
                return await self._adopt_existing(row, batch)
            try:
                result = await self._accounts.run(chain.settle_epoch, batch)
            except EpochAlreadySettledError:
                return await self._adopt_existing(row, batch)
            fault_point(AFTER_CHAIN_TX_SETTLE)
            self._checkpoint("sent")
        except ContractRevertError as exc:
            if refusals is not None:
                refusals.append(exc)
            if row.attempts + 1 >= self._max_refusals:
                return await self._fail(
                    epoch_id,
                    f"{exc.code}: {exc} (refused {row.attempts + 1} times): {_explain(exc)}",
                )
            return await self._retry_later(epoch_id, exc)
        except ChainError as exc:
            return await self._retry_later(epoch_id, exc)
        return await self._confirm(
            epoch_id, result.tx_hash, result.block_number, gas_used=result.gas_used
        )

    async def _adopt_existing(
        self, row: SettlementOutboxRow, batch: EpochBatch
    ) -> SettlementOutboxRow:
        """The chain settled this epoch already (a crash hid the receipt): record that
        settlement instead of sending another."""
        chain = self._accounts.chain
        root = await self._accounts.run(chain.epoch_root, row.epoch_id)
        if root != batch.merkle_root:
            return await self._fail(row.epoch_id, "the chain holds another root for the epoch")
        events = await self._accounts.run(chain.events_since, row.block_number or 0)
        found = next(
            (
                e
                for e in events
                if e.name == "EpochSettled" and int(e.args["epoch_id"]) == row.epoch_id
            ),
            None,
        )
        if found is None:
            return await self._fail(
                row.epoch_id, "settled on chain but the transaction is not found"
            )
        return await self._confirm(row.epoch_id, found.tx_hash, found.block_number)

    async def _confirm(
        self, epoch_id: int, tx_hash: str, block: int, *, gas_used: int | None = None
    ) -> SettlementOutboxRow:
        async with self._db.write() as session:
            row = await repo.outbox_entry(session, epoch_id, lock=self._db.locks_rows)
            assert row is not None
            await repo.set_outbox_status(session, row, repo.OUTBOX_CONFIRMED)
            row.tx_hash = tx_hash
            row.block_number = block
            row.gas_used = gas_used
            row.attempts += 1
            row.last_error = None
            row.confirmed_at = self._clock.now()
            await repo.mark_epoch_settlement(
                session, epoch_id, repo.SETTLEMENT_SETTLED, tx_hash=tx_hash
            )
            settled = (
                await self._delivery.mark_settled(session, epoch_id)
                if self._delivery is not None
                else []
            )
            parties = _parties(await repo.epoch_trades(session, epoch_id)) if settled else {}
        if self._delivery is not None:
            await self._delivery.publish(settled, parties)
        await self._bus.publish(
            Event(
                EventType.EPOCH_SETTLED,
                {
                    "epoch_id": epoch_id,
                    "tx_hash": tx_hash,
                    "merkle_root": row.merkle_root,
                    "trade_count": row.trade_count,
                },
            )
        )
        _log.info("epoch_settled", epoch_id=epoch_id, tx_hash=tx_hash)
        return row

    async def _retry_later(self, epoch_id: int, exc: ChainError) -> SettlementOutboxRow:
        async with self._db.write() as session:
            row = await repo.outbox_entry(session, epoch_id, lock=self._db.locks_rows)
            assert row is not None
            delay = min(self._retry_s * 2**row.attempts, _MAX_BACKOFF_S)
            row.attempts += 1
            row.last_error = f"{exc.code}: {exc}"
            row.next_attempt_at = self._clock.now() + timedelta(seconds=delay)
        _log.warning("settlement_retry", epoch_id=epoch_id, error=row.last_error, delay_s=delay)
        return row

    async def _fail(self, epoch_id: int, reason: str) -> SettlementOutboxRow:
        async with self._db.write() as session:
            row = await repo.outbox_entry(session, epoch_id, lock=self._db.locks_rows)
            assert row is not None
            await repo.set_outbox_status(session, row, repo.OUTBOX_FAILED)
            row.attempts += 1
            row.last_error = reason
            await repo.mark_epoch_settlement(session, epoch_id, repo.SETTLEMENT_FAILED)
            # Same transaction: a failed settlement always has its alert.
            session.add(
                MeterAlertRow(
                    kind=SETTLEMENT_FAILED_ALERT,
                    epoch_id=epoch_id,
                    detail=reason,
                    raised_at=self._clock.now(),
                )
            )
        if self._failures is not None:
            self._failures.inc()
        _log.error("settlement_failed", epoch_id=epoch_id, reason=reason)
        return row

    # -- proofs --------------------------------------------------------------

    async def trade_proof(self, trade_id: str) -> TradeProof:
        """The trade's leaf and Merkle proof, and whether the chain's root accepts them."""
        async with self._db.read() as session:
            trade = await repo.trade_by_id(session, trade_id)
            if trade is None:
                raise TradeNotFoundError("no such trade", trade_id=trade_id)
            row = await repo.outbox_entry(session, trade.epoch_id)
        if row is None or row.status != repo.OUTBOX_CONFIRMED:
            raise TradeNotSettledError(f"epoch {trade.epoch_id} is not settled", trade_id=trade_id)
        batch = await self._batch_for(trade.epoch_id)
        leaf = batch.leaf_of(trade_id).hash()
        proof = batch.proof(trade_id)
        verified = await self._accounts.read(
            self._accounts.chain.verify_trade_proof, trade.epoch_id, leaf, proof
        )
        return TradeProof(
            trade_id=trade_id,
            epoch_id=trade.epoch_id,
            leaf=leaf,
            proof=proof,
            root=batch.merkle_root,
            tx_hash=row.tx_hash,
            verified_on_chain=verified,
        )

    async def trade_leaf(self, principal: Principal, trade_id: str) -> TradeLeaf:
        """What the trade's Merkle leaf is made of, parties' addresses included, for a
        party of the trade or an operator or auditor (anyone else: not found)."""
        async with self._db.read() as session:
            trade = await repo.trade_by_id(session, trade_id)
            parties = {trade.buyer, trade.seller} if trade is not None else set()
            if trade is None or not (
                principal.role.sees_everything or principal.user_id in parties
            ):
                raise TradeNotFoundError("no such trade", trade_id=trade_id)
            row = await repo.outbox_entry(session, trade.epoch_id)
        if row is None or row.status != repo.OUTBOX_CONFIRMED:
            raise TradeNotSettledError(f"epoch {trade.epoch_id} is not settled", trade_id=trade_id)
        return (await self._batch_for(trade.epoch_id)).leaf_of(trade_id)

    # -- indexer -------------------------------------------------------------

    async def index_events(self) -> int:
        """Read new contract events into ``chain_events``; returns how many were read."""
        async with self._db.read() as session:
            from_block = await repo.indexer_next_block(session, repo.INDEXER)
        chain = self._accounts.chain
        head = await self._accounts.run(chain.block_number)
        read = 0
        # Up to the head as it was (a node refuses a log query that starts beyond it), a
        # window at a time, each stored with the indexer's mark: a long catch-up (a new
        # database beside an old chain, an outage) keeps what it has read.
        for first, last in block_windows(from_block, head, self._log_window_blocks):
            events = await self._accounts.run(chain.events_since, first, last)
            async with self._db.write() as session:
                rows = [_event_row(e) for e in events]
                await repo.store_events(session, repo.INDEXER, rows, last + 1)
                # Deposits a self-custody participant sent straight to a node (not through
                # the relay) are credited here, in the same transaction, once per event.
                await apply_self_custody_deposits(
                    session, chain, events, lock=self._db.locks_rows, at=self._clock.now()
                )
            read += len(events)
        return read


def _explain(refused: ContractRevertError) -> str:
    """What a refusal means for the people running the market."""
    if isinstance(refused, InsufficientBalanceError):
        return GRANTED_ENERGY_HINT
    return refused.reason or "the contract gave no reason"


def _event_row(event: ChainEvent) -> dict[str, Any]:
    return {
        "block_number": event.block_number,
        "tx_hash": event.tx_hash,
        "log_index": event.log_index,
        "contract": event.contract,
        "name": event.name,
        "args": json.dumps({k: _json_value(v) for k, v in event.args.items()}),
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


class ChainWorkerTask(PeriodicTask):
    """Every ``tick_s`` seconds: check the chain still holds what was recorded (and send
    again what it lost, :mod:`wattx.services.onchain.chain_history`), mint what ended epochs
    earned, settle what is due, index new chain events, then settle interrupted
    retirements (which needs the index)."""

    name = "wattx-chain-worker"

    def __init__(
        self,
        settlement: SettlementService,
        minting: MintingService,
        retirement: RetirementService,
        *,
        tick_s: float,
        delivery: DeliveryService | None = None,
        governance: Callable[[], Awaitable[int]] | None = None,
    ) -> None:
        """``governance`` applies indexed ``ProposalExecuted`` events (from the next epoch)."""
        super().__init__(tick_s=tick_s)
        self._governance = governance
        self._settlement = settlement
        self._delivery = delivery
        self._minting = minting
        self._retirement = retirement
        self._history = ChainHistoryCheck(
            settlement.database, settlement.chain_accounts, minting, settlement.clock
        )

    async def run_round(self) -> None:
        delivery_steps = (
            (self._delivery.plan_due, self._delivery.sweep) if self._delivery is not None else ()
        )
        for step in (
            *delivery_steps,
            self._history.run,
            self._minting.mint_due,
            self._settlement.settle_due,
            self._settlement.index_events,
            *([self._governance] if self._governance else []),
            self._retirement.recover_stale,
        ):
            try:
                await step()
            except Exception:
                # Nothing is lost: mints, the outbox and the indexer's
                # progress are in the database; the next tick resumes.
                _log.exception("chain_worker_step_failed", step=step.__name__)
