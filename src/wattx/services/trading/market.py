"""The live market: one engine fed by the API, every change committed before it is told.

The engine is a single writer. One asyncio lock serialises everything that
changes it (submissions, cancels, gate closures, zone changes); each of those
runs the engine and commits the result in one write transaction while holding
the lock. Should the commit fail after the engine has changed, the engine is
rebuilt from the database, which is the record of truth. Should that rebuild
fail too (the database is unreachable), the engine is marked stale: nothing
reads or changes it until a rebuild succeeds, which every use under the lock
tries first, so the in-memory market never runs ahead of the database. Gate
closures that fail are found again and retried by the next clock tick.

Submissions are group-committed: callers queue them, one writer task takes
everything queued so far as a batch, runs it through the engine in arrival
order and commits it in one transaction, then answers each caller. Under load
one commit (and one read of the balances involved) serves many submissions;
alone, a submission is a batch of one. After a large group, a writer that finds
only a few queued waits a moment for the rest of the burst (:data:`LINGER_S`).

With several replicas on PostgreSQL one of them is elected to be this writer
(:mod:`wattx.services.trading.writer_election`); every write transaction
checks its fencing token first, and the others hand their submissions to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.bus.events import Event, EventType
from wattx.bus.port import EventBus
from wattx.domain import (
    DomainError,
    EpochSchedule,
    Order,
    OrderKind,
    OrderStatus,
    Side,
    Trade,
    Zone,
)
from wattx.domain.epochs import DeliveryEpoch, EpochClock
from wattx.domain.ids import new_time_ordered_id
from wattx.governance.parameters import (
    MARKET_FEE,
    PRICE_CEILING_MARGIN,
    PRICE_FLOOR_MARGIN,
    link_of,
    set_for_epoch,
)
from wattx.grid.model import Direction
from wattx.market import (
    BookDepth,
    MarketConfig,
    MarketEngine,
    Mechanism,
    ReferencePriceInputs,
    ReferencePriceWeights,
    SubmitResult,
    ZoneRateTable,
    escrow_required,
)
from wattx.market.config import MAX_MARGIN_BPS, BoundMargins, fee_at
from wattx.market.coupling import LinkReport
from wattx.market.errors import (
    DuplicateClientOrderIdError,
    GateClosedError,
    InvalidQuantityError,
    MarketAlreadyPausedError,
    MarketNotPausedError,
    MarketPausedError,
    OrderNotFoundError,
    OrderNotOpenError,
    PriceOutOfBoundsError,
    TradeNotFoundError,
    UnknownZoneError,
)
from wattx.market.rates import governed_rates
from wattx.market.reference_price import (
    FactorBreakdown,
    base_price,
    explain,
    governed_weights,
)
from wattx.services.errors import (
    EpochNotClosedError,
    IdempotencyKeyReusedError,
    InvalidEpochError,
    NotAdmittedError,
    NotMarketWriterError,
    StorageUnavailableError,
)
from wattx.services.onchain.ledger import escrow_asset, lock_escrow, release_escrow
from wattx.services.principal import Principal
from wattx.services.trading.market_events import books_touched, order_event, trade_event
from wattx.services.trading.market_metrics import MarketMetrics
from wattx.services.trading.market_persistence import EngineChanges, record_engine_changes
from wattx.services.trading.views import (
    order_row_view,
    order_view,
    trade_row_view,
    trade_seen_by,
    trade_view,
)
from wattx.services.trading.zones import spec_from_row
from wattx.store import audit as audit_repo
from wattx.store import epochs as epoch_repo
from wattx.store import idempotency as idem_repo
from wattx.store import market_writer as writer_repo
from wattx.store import orders as order_repo
from wattx.store import reference_inputs as reference_repo
from wattx.store import trades as trade_repo
from wattx.store import zones as zone_repo
from wattx.store.balances import Asset, lock_balances
from wattx.store.db import Database
from wattx.store.models import EpochRow, IdempotencyRow, OrderRow, TradeRow
from wattx.store.models_governance import MarketPauseRow
from wattx.units import PPM_PER_UNIT

_log = structlog.get_logger("wattx.market")


# Group commit under load (as PostgreSQL's ``commit_delay`` with ``commit_siblings``):
# the callers one commit answers send their next orders at about the same time, but
# the first of them to arrive would otherwise start a transaction of its own, and the
# rest would wait for it; groups then alternate between a few and nearly everyone,
# and the few pay a whole transaction. So after a group of at least LINGER_AFTER
# submissions, a writer that finds fewer queued than the last group held waits
# LINGER_S once before taking them. Alone or at low load nothing waits. (Waiting only
# below half the last group let the callers settle into two cohorts that took turns,
# groups of 32 and 18 out of 50 clients: docs/operations.md, "Single orders: whole
# bursts in one group".)
LINGER_AFTER = 8
LINGER_S = 0.001


# Fields Final rather than the class frozen: the type checker refuses any assignment, and
# building one costs what a plain dataclass costs (a frozen one sets each field through
# object.__setattr__: docs/operations.md, "Records built per order").
@dataclass(slots=True)
class OrderRequest:
    side: Final[Side]
    qty_wh: Final[int]
    zone: Final[str]
    epoch_id: Final[int | None] = None
    limit_price: Final[int | None] = None
    kind: Final[OrderKind] = OrderKind.LIMIT
    client_order_id: Final[str | None] = None

    def fingerprint(self) -> str:
        """A hash of the request as sent, to tell a retry from a different request."""
        raw = {
            "side": self.side.value,
            "qty_wh": self.qty_wh,
            "zone": self.zone,
            "epoch_id": self.epoch_id,
            "limit_price": self.limit_price,
            "kind": self.kind.value,
            "client_order_id": self.client_order_id,
        }
        return hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()


@dataclass(slots=True)
class Submission:
    """The answer to a submission: what was stored, and whether it is a replay."""

    status_code: Final[int]
    body: Final[dict[str, Any]]
    replayed: Final[bool]


@dataclass(frozen=True, slots=True)
class EpochInfo:
    id: int
    start: datetime
    end: datetime
    gate_closure: datetime
    open_for_orders: bool


@dataclass(frozen=True, slots=True)
class ZoneMarket:
    zone: str
    name: str
    mechanism: Mechanism
    current_epoch: EpochInfo
    upcoming: list[EpochInfo]


@dataclass(frozen=True, slots=True)
class MarketPause:
    zone: str
    paused_by: str
    reason: str
    paused_at: datetime


@dataclass(frozen=True, slots=True)
class ReferenceQuote:
    zone: str
    epoch_id: int
    price: int
    feed_in: int
    retail: int
    base: int = 0
    factors: tuple[tuple[str, int], ...] = ()
    """Each factor's name and value in parts per million, in the order applied."""
    base_source: str = ""
    """Where the base came from: ``governance``, ``last_trade`` or ``tariff_midpoint``."""
    from_zone: str = ""
    breakdown: tuple[FactorBreakdown, ...] = ()
    """Each factor with its inputs, unclamped value, clamp and weight."""


@dataclass(frozen=True, slots=True)
class PublicTrade:
    """A trade as anyone may see it: no party, no order."""

    id: str
    epoch_id: int
    zone: str
    qty_wh: int
    price: int
    value: int
    executed_at: datetime
    settlement_status: str | None


@dataclass(frozen=True, slots=True)
class ClosureSummary:
    epoch_id: int
    trades: list[Trade]
    expired: int
    clearing_prices: dict[str, int | None]
    forced: bool
    congestion: list[dict[str, object]] = field(default_factory=list)


def congestion_view(reports: Iterable[LinkReport]) -> list[dict[str, object]]:
    """A coupled auction's link reports as JSON-ready records (stored, sent, served)."""
    return [
        {
            "child": r.child,
            "parent": r.parent,
            "direction": r.direction.value,
            "flow_wh": r.flow_wh,
            "capacity_wh": r.capacity_wh,
            "shadow_price": r.shadow_price,
            "rent": r.rent,
        }
        for r in reports
    ]


class MarketService:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        clock: EpochClock,
        metrics: MarketMetrics,
        *,
        schedule: EpochSchedule,
        fee_bps: int,
        cross_zone: bool,
        rates: ZoneRateTable | None = None,
        upcoming_epochs: int = 4,
        max_batch: int = 256,
    ) -> None:
        self._db = db
        self._bus = bus
        self._clock = clock
        self._metrics = metrics
        self.schedule = schedule
        self._fee_bps = fee_bps
        # Governance's executed fees: epoch id → fee from that epoch on.
        self._fee_changes: dict[int, int] = {}
        # Governance's parameter sets: first epoch → every governed value from then on.
        self._parameter_sets: dict[int, dict[str, int]] = {}
        # First epochs of every parameter set applied in this process: a later set
        # starts after them, so two sets never claim the same epoch.
        self._parameter_starts: set[int] = set()
        self._cross_zone = cross_zone
        # The defaults; the operator's overrides are laid over them on every rebuild.
        self._base_rates = rates or ZoneRateTable()
        self.rates = self._base_rates
        self.reference_weights = ReferencePriceWeights()
        self._upcoming = upcoming_epochs
        self._lock = asyncio.Lock()
        self.max_batch = max_batch
        self._queue: list[_Group] = []
        # The size of the last group committed (or failed): see LINGER_AFTER.
        self._last_group_size = 0
        self._writer: asyncio.Task[None] | None = None
        self._zones: dict[str, Zone] = {}
        # Zones whose order intake the operator paused (an emergency), by zone id.
        self._paused: dict[str, MarketPause] = {}
        self._mechanisms: dict[str, Mechanism] = {}
        self._engine: MarketEngine | None = None
        self._closed: set[int] = set()
        # Epochs that took an order and have not closed: an epoch whose orders
        # all filled has nothing left in the books, but its trades still need
        # the closure (the epoch row) to be settled.
        self._unclosed: set[int] = set()
        # True while the engine may hold changes the database rolled back.
        self._stale = False
        # Scaling out (docs/operations.md): with an elected writer, ``_term`` is the
        # fencing token every write transaction checks; a replica that is not the
        # writer forwards submissions (``_forward``) and reads a copy of the books.
        self.is_writer = True
        self._term: int | None = None
        self._forward: Forward | None = None
        self._on_follower_change: Callable[[], Awaitable[None]] | None = None
        self._view_at = 0.0

    # lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Load zones and rebuild the books from the open orders in the database."""
        async with self._lock:
            await self._rebuild_from_database()
            async with self._db.read() as session:
                self._unclosed = await epoch_repo.unclosed_epochs_with_trades(session)

    async def reload_zones(self) -> None:
        """Take zone and zone-rate changes into the engine, keeping every open order.

        Resting orders keep their place; matches made from now on use the new
        rates (trades already made keep theirs).
        """
        async with self._lock:
            await self._rebuild_from_database()
            self._view_at = time.monotonic()
        if not self.is_writer and self._on_follower_change is not None:
            await self._on_follower_change()

    # the elected writer ---------------------------------------------------------

    def follow(self, forward: Forward, on_change: Callable[[], Awaitable[None]]) -> None:
        """Stop writing (at once) and from now on hand submissions to the elected writer
        with ``forward``; ``on_change`` tells the writer that zones changed here."""
        self.is_writer = False
        self._forward = forward
        self._on_follower_change = on_change

    def stop_writing(self) -> None:
        """The writer lock is lost: write nothing more (the fencing token stops whatever
        transaction is under way from committing once another writer has taken over)."""
        self.is_writer = False

    async def become_writer(self, term: int) -> None:
        """This process holds the writer lock and raised the term to ``term``: rebuild the
        books from the database (everything the former writer committed) and write."""
        async with self._lock:
            self._term = term
            await self._rebuild_from_database()
            async with self._db.read() as session:
                self._unclosed = await epoch_repo.unclosed_epochs_with_trades(session)
            self.is_writer = True

    @property
    def term(self) -> int | None:
        """The fencing token this process writes under (None without an election)."""
        return self._term

    async def refresh_view(self, max_age_s: float = 1.0) -> None:
        """On a replica that is not the writer: rebuild the copy of the books that depth,
        reference prices and open orders are read from, if older than ``max_age_s``."""
        if self.is_writer or time.monotonic() - self._view_at < max_age_s:
            return
        async with self._lock:
            if time.monotonic() - self._view_at < max_age_s:
                return
            await self._rebuild_from_database()
            self._view_at = time.monotonic()

    def _require_writer(self) -> None:
        if not self.is_writer:
            raise NotMarketWriterError(
                "this replica is not the market writer; send it to the writer or try again"
            )

    async def _fence(self, session: AsyncSession) -> None:
        """Inside a write transaction: refuse to commit unless this process is still the
        writer of its term (nothing to check without an election)."""
        if self._term is None:
            return
        current = await writer_repo.check_term(session)
        if current is None or current[0] != self._term:
            self.is_writer = False
            raise NotMarketWriterError("another replica has become the market writer")

    def enqueue_forwarded(
        self,
        inbox_id: int,
        principal: Principal,
        requests: Sequence[OrderRequest],
        keys: Sequence[str | None],
    ) -> asyncio.Future[list[Submission | DomainError]]:
        """Queue submissions another replica handed over, as one group; the writer
        answers them in the inbox in the transaction that places them.

        The future is done once that transaction ended: with one answer per
        submission, or the failure of the transaction."""
        group = self._group(
            [
                replace(self._pending(principal, request, key), inbox_id=inbox_id)
                for request, key in zip(requests, keys, strict=True)
            ]
        )
        self._enqueue(group)
        return group.future

    @property
    def engine(self) -> MarketEngine | None:
        return self._engine

    # governed parameters -----------------------------------------------------

    def fee_for(self, epoch_id: int) -> int:
        """The market fee (bps) of trades delivered in ``epoch_id``."""
        return fee_at(self._fee_bps, self._fee_changes, epoch_id)

    @property
    def fee_bps(self) -> int:
        """The fee of the first epoch open for orders now."""
        return self.fee_for(self.schedule.first_open_epoch(self._clock.now()))

    def parameters_for(self, epoch_id: int) -> dict[str, int]:
        """The governed values ``epoch_id`` runs under (empty before any set is loaded)."""
        start = set_for_epoch(list(self._parameter_sets), epoch_id)
        return dict(self._parameter_sets[start]) if start is not None else {}

    def rates_for(self, epoch_id: int) -> ZoneRateTable:
        """The zone rates of ``epoch_id``: the governed rates of its parameter set over the
        defaults."""
        start = set_for_epoch(list(self._parameter_sets), epoch_id)
        if start is None:
            return self.rates
        return governed_rates(self._base_rates, self._parameter_sets[start])

    def margins_for(self, epoch_id: int) -> BoundMargins:
        """The price-bound margins of ``epoch_id`` (none before any set is loaded)."""
        return _margins(self.parameters_for(epoch_id))

    def bounds_for(self, zone: Zone, epoch_id: int) -> tuple[int, int]:
        """The lowest and highest limit price of ``zone``'s orders for ``epoch_id``: its
        tariffs at delivery time, narrowed by the epoch's governed margins."""
        band = zone.tariff.band_at(self._epoch(epoch_id).start.hour)
        return self.margins_for(epoch_id).bounds(band.feed_in, band.retail)

    async def load_parameter_sets(self, sets: Mapping[int, Mapping[str, int]]) -> None:
        """Take the recorded parameter sets (first epoch → values) into the engine: the fee
        and the zone rates of each epoch, and the reference price's weights and base."""
        async with self._lock:
            self._parameter_sets = {start: dict(values) for start, values in sets.items()}
            self._fee_changes = {
                start: values[MARKET_FEE]
                for start, values in self._parameter_sets.items()
                if MARKET_FEE in values
            }
            self._parameter_starts = set(self._parameter_sets)
            await self._rebuild_from_database()

    async def apply_from_next_epoch(
        self,
        values: Mapping[str, int],
        record: Callable[[AsyncSession, int], Awaitable[None]],
    ) -> int:
        """Make ``values`` the governed parameters from the next epoch that holds no order
        and no trade yet, and return that epoch. Never mid-epoch, and never under an order
        escrowed for the old fee or matched at the old rates. ``record`` writes the change
        (given that epoch) in the same transaction; the engine takes it only once that has
        committed."""
        self._require_writer()
        async with self._lock:
            engine = await self._current_engine()
            now = self._clock.now()
            busy = [order.epoch_id for order in engine.open_orders()] if engine else []
            async with self._db.write() as session:
                await self._fence(session)
                last_traded = await trade_repo.max_trade_epoch(session)
                start = max(
                    [self.schedule.first_open_epoch(now), *(e + 1 for e in busy)]
                    + ([last_traded + 1] if last_traded is not None else [])
                    + [e + 1 for e in self._fee_changes]
                    + [e + 1 for e in self._parameter_starts]
                )
                await record(session, start)
            self._parameter_starts.add(start)
            self._parameter_sets[start] = dict(values)
            if MARKET_FEE in values:
                self._fee_changes[start] = values[MARKET_FEE]
            await self._rebuild_from_database()
            return start

    @property
    def zones(self) -> dict[str, Zone]:
        return dict(self._zones)

    def mechanism(self, zone: str) -> Mechanism:
        return self._mechanisms.get(zone, Mechanism.CONTINUOUS)

    # emergency pause -------------------------------------------------------

    def pause_of(self, zone_id: str) -> MarketPause | None:
        """The zone's pause, or None while its market takes orders."""
        return self._paused.get(zone_id)

    async def pause(self, actor: str, zone_id: str, reason: str, *, source: str) -> MarketPause:
        """Halt the zone's order intake now (new orders and amendments are refused with
        ``market_paused``; cancels, gate closure and settlement go on), in the audit log."""
        self._require_zone(zone_id)
        self._require_writer()
        async with self._lock:
            if zone_id in self._paused:
                raise MarketAlreadyPausedError("the market is paused already", zone=zone_id)
            now = self._clock.now()
            async with self._db.write() as session:
                await self._fence(session)
                session.add(
                    MarketPauseRow(zone_id=zone_id, paused_by=actor, reason=reason, paused_at=now)
                )
                await audit_repo.append(
                    session,
                    lock=self._db.locks_rows,
                    at=now,
                    actor=actor,
                    action="market.paused",
                    target=f"zone:{zone_id}",
                    source=source,
                    after={"reason": reason},
                )
            pause = self._paused[zone_id] = MarketPause(zone_id, actor, reason, now)
        await self._bus.publish(
            Event(
                EventType.MARKET_PAUSED,
                {"zone": zone_id, "reason": reason, "paused_at": now.isoformat()},
            )
        )
        return pause

    async def resume(self, actor: str, zone_id: str, *, source: str) -> None:
        """Take orders for the zone again, in the audit log."""
        self._require_zone(zone_id)
        self._require_writer()
        async with self._lock:
            pause = self._paused.get(zone_id)
            if pause is None:
                raise MarketNotPausedError("the market is not paused", zone=zone_id)
            now = self._clock.now()
            async with self._db.write() as session:
                await self._fence(session)
                row = await session.get(MarketPauseRow, zone_id)
                if row is not None:
                    await session.delete(row)
                await audit_repo.append(
                    session,
                    lock=self._db.locks_rows,
                    at=now,
                    actor=actor,
                    action="market.resumed",
                    target=f"zone:{zone_id}",
                    source=source,
                    before={"reason": pause.reason, "paused_at": pause.paused_at.isoformat()},
                )
            del self._paused[zone_id]
        await self._bus.publish(
            Event(EventType.MARKET_RESUMED, {"zone": zone_id, "resumed_at": now.isoformat()})
        )

    # orders -----------------------------------------------------------------

    async def submit(
        self, principal: Principal, request: OrderRequest, *, idempotency_key: str | None
    ) -> Submission:
        """Queue a submission for the writer and wait until it is committed (or refused).

        Submissions that arrive while the writer is busy are handled together
        as one batch in one transaction (group commit); each caller is answered
        only once that transaction has committed.
        """
        if not principal.is_admitted:
            raise NotAdmittedError("orders are placed by admitted participants")
        if not self.is_writer:
            (answer,) = await self._forwarded(principal, [request], [idempotency_key])
            if isinstance(answer, DomainError):
                raise answer
            return answer
        group = self._group([self._pending(principal, request, idempotency_key)])
        self._enqueue(group)
        # The future is this caller's alone: one that goes away cancels it, and the
        # writer still writes the group (`_settle` passes over a cancelled future).
        # Not shielded: a shield cost an extra future and callback on every order.
        (answer,) = await group.future
        if isinstance(answer, DomainError):
            raise answer
        return answer

    async def submit_many(
        self,
        principal: Principal,
        requests: Sequence[OrderRequest],
        *,
        idempotency_key: str | None,
    ) -> list[Submission | DomainError]:
        """Place several orders of one caller in one write transaction, in the given order.

        Each order follows the rules of :meth:`submit` (escrow, idempotency by
        its ``client_order_id`` or, with ``idempotency_key``, by the key
        ``{idempotency_key}#{index}``); one refused by a rule is answered with
        its :class:`DomainError` and the others go on. The orders are never split
        over two transactions, and nobody is answered before the commit; a
        failure of the transaction itself fails them all (and is raised).
        """
        if not principal.is_admitted:
            raise NotAdmittedError("orders are placed by admitted participants")
        if not requests:
            return []
        keys = [
            None if idempotency_key is None else f"{idempotency_key}#{index}"
            for index in range(len(requests))
        ]
        if not self.is_writer:
            return await self._forwarded(principal, requests, keys)
        group = self._group(
            [
                self._pending(principal, request, key)
                for request, key in zip(requests, keys, strict=True)
            ]
        )
        self._enqueue(group)
        # A failure of the transaction (or the writer stopping) fails every order: raised.
        # The future is this caller's alone, as for a single order.
        return await group.future

    async def _forwarded(
        self,
        principal: Principal,
        requests: Sequence[OrderRequest],
        keys: Sequence[str | None],
    ) -> list[Submission | DomainError]:
        if self._forward is None:
            raise NotMarketWriterError("this replica is not the market writer")
        return await self._forward(principal, requests, keys)

    def _pending(
        self, principal: Principal, request: OrderRequest, idempotency_key: str | None
    ) -> _PendingSubmission:
        key = idempotency_key or (
            f"client-order-id:{request.client_order_id}" if request.client_order_id else None
        )
        # The fingerprint tells a retry from another request under the same key: only
        # a submission with a key needs it.
        fingerprint = request.fingerprint() if key is not None else ""
        return _PendingSubmission(principal, request, key, fingerprint)

    @staticmethod
    def _group(submissions: list[_PendingSubmission]) -> _Group:
        return _Group(submissions, asyncio.get_running_loop().create_future())

    def _enqueue(self, group: _Group) -> None:
        """Queue submissions that must share one transaction, and wake the writer."""
        self._queue.append(group)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_queued_submissions())

    async def cancel(self, principal: Principal, order_id: str) -> dict[str, Any]:
        self._require_writer()
        events: list[Event] = []
        async with self._lock:
            engine = await self._current_engine()
            now = self._clock.now()
            async with self._db.read() as session:
                stored = await order_repo.order_by_id(session, order_id)
            if stored is None or stored.owner_id != principal.user_id:
                # Someone else's order is reported as absent, not as forbidden.
                raise OrderNotFoundError("no such order", order_id=order_id)
            moved = False
            try:
                async with self._db.write() as session:
                    await self._fence(session)
                    cancelled = engine.cancel(order_id, principal.user_id)
                    moved = True
                    await record_engine_changes(
                        session,
                        new_rows=[],
                        changed=[cancelled],
                        trades=[],
                        at=now,
                        lock=self._db.locks_rows,
                    )
            except BaseException:
                if moved:
                    await self._resync()
                raise
            events.append(order_event(EventType.ORDER_CANCELLED, cancelled))
            events.extend(books_touched([cancelled], []))
        await self._publish(events)
        return order_view(cancelled)

    async def amend(
        self,
        principal: Principal,
        order_id: str,
        *,
        qty_wh: int | None,
        limit_price: int | None,
    ) -> dict[str, Any]:
        """Replace an open order by a new one with another quantity and/or limit price.

        The replacement keeps side, zone, epoch, kind and client order id (which
        moves to it), loses time priority and is matched on arrival like a new
        order. ``qty_wh`` is its whole quantity; left out, it is what the old
        order still had open. The old order's remaining escrow is released and
        the replacement's locked in the same transaction, so the replacement may
        reuse it; should that not cover it, or the engine refuse it, nothing
        changes. Answers like a submission, plus ``replaces``: the old order's id.
        """
        self._require_writer()
        events: list[Event] = []
        async with self._lock:
            engine = await self._current_engine()
            now = self._clock.now()
            locks = self._db.locks_rows
            moved = False
            try:
                async with self._db.write() as session:
                    await self._fence(session)
                    row = (await order_repo.orders_for_update(session, [order_id], lock=locks)).get(
                        order_id
                    )
                    if row is None or row.owner_id != principal.user_id:
                        # Someone else's order is reported as absent, not as forbidden.
                        raise OrderNotFoundError("no such order", order_id=order_id)
                    if OrderStatus(row.status).is_final:
                        raise OrderNotOpenError(
                            "order is no longer open", order_id=order_id, status=row.status
                        )
                    self._require_not_paused(row.zone)
                    open_wh = row.qty_wh - row.filled_wh - row.cancelled_wh
                    new_qty = qty_wh if qty_wh is not None else open_wh
                    new_price = limit_price if limit_price is not None else row.limit_price
                    if new_qty <= 0:
                        raise InvalidQuantityError(
                            "quantity must be a positive number of Wh", qty_wh=new_qty
                        )
                    asset = Asset(row.escrow_asset)
                    escrow = escrow_required(
                        Side(row.side), new_qty, new_price, self.fee_for(row.epoch_id)
                    )
                    # Released first so the replacement can reuse it; a refusal
                    # below rolls both movements back.
                    await release_escrow(
                        session, row.owner_id, asset, row.escrow_remaining, lock=locks
                    )
                    row.escrow_remaining = 0
                    await lock_escrow(session, row.owner_id, asset, escrow, lock=locks)
                    old, result = engine.amend(
                        order_id,
                        principal.user_id,
                        new_order_id=new_time_ordered_id(),
                        qty_wh=new_qty,
                        limit_price=new_price,
                        now=now,
                    )
                    moved = True
                    if row.client_order_id is not None:
                        # One order per client order id (unique index): the
                        # replacement takes it over, as it does in the engine.
                        row.client_order_id = None
                        await session.flush()
                    new_row = order_repo.new_order_row(
                        result.order, escrow_asset=asset.value, escrow=escrow, at=now
                    )
                    touched = [o for o in result.touched if o.id != result.order.id]
                    await record_engine_changes(
                        session,
                        new_rows=[new_row],
                        changed=[old, *touched],
                        trades=result.trades,
                        at=now,
                        lock=locks,
                    )
            except BaseException:
                if moved:
                    await self._resync()
                raise
            self._unclosed.add(result.order.epoch_id)
            self._count([result])
            events.append(order_event(EventType.ORDER_CANCELLED, old))
            events.append(order_event(EventType.ORDER_CREATED, result.order))
            events.extend(trade_event(trade) for trade in result.trades)
            events.extend(books_touched([old, result.order, *result.touched], result.trades))
        await self._publish(events)
        return {
            "order": order_view(result.order),
            "trades": [trade_view(t) for t in result.trades],
            "limited_by": list(result.limited_by),
            "replaces": old.id,
        }

    async def get_order(self, principal: Principal, order_id: str) -> dict[str, Any]:
        async with self._db.read() as session:
            row = await order_repo.order_by_id(session, order_id)
        if row is None or not (principal.role.sees_everything or row.owner_id == principal.user_id):
            raise OrderNotFoundError("no such order", order_id=order_id)
        return order_row_view(row)

    async def list_orders(
        self,
        principal: Principal,
        *,
        owner: str | None,
        zone: str | None,
        epoch_id: int | None,
        status: str | None,
        side: str | None,
        limit: int,
        offset: int,
    ) -> list[OrderRow]:
        """The caller's orders; operators and auditors may list anyone's (``owner``)."""
        owner_filter = owner if principal.role.sees_everything else principal.user_id
        async with self._db.read() as session:
            return await order_repo.list_orders(
                session,
                owner_id=owner_filter,
                zone=zone,
                epoch_id=epoch_id,
                status=status,
                side=side,
                limit=limit,
                offset=offset,
            )

    async def list_trades(
        self,
        principal: Principal,
        *,
        zone: str | None,
        epoch_id: int | None,
        limit: int,
        offset: int,
    ) -> list[TradeRow]:
        party = None if principal.role.sees_everything else principal.user_id
        async with self._db.read() as session:
            return await trade_repo.list_trades(
                session, party=party, zone=zone, epoch_id=epoch_id, limit=limit, offset=offset
            )

    async def get_trade(self, principal: Principal, trade_id: str) -> dict[str, Any]:
        """One trade: to its buyer or seller (without the other party's ids), or to oversight.

        Anyone else's trade is reported as absent, like someone else's order.
        """
        async with self._db.read() as session:
            row = await trade_repo.trade_by_id(session, trade_id)
        if row is None:
            raise TradeNotFoundError("no such trade", trade_id=trade_id)
        view = trade_row_view(row)
        sees_everything = principal.role.sees_everything
        if not sees_everything and principal.user_id not in (row.buyer, row.seller):
            raise TradeNotFoundError("no such trade", trade_id=trade_id)
        return trade_seen_by(view, principal.user_id, sees_everything=sees_everything)

    async def public_trades(self, zone: str, *, limit: int) -> list[PublicTrade]:
        """The zone's latest trades, newest first, without who made them."""
        self._require_zone(zone)
        async with self._db.read() as session:
            rows = await trade_repo.recent_trades(session, zone=zone, limit=limit)
        return [
            PublicTrade(
                r.id,
                r.epoch_id,
                r.zone,
                r.qty_wh,
                r.price,
                r.value,
                r.executed_at,
                r.settlement_status,
            )
            for r in rows
        ]

    # books and epochs ---------------------------------------------------------

    def first_open_epoch(self, now: datetime) -> int:
        """The first epoch whose gate is open: not passed, and not closed early by an operator."""
        epoch_id = self.schedule.first_open_epoch(now)
        while epoch_id in self._closed:
            epoch_id += 1
        return epoch_id

    def depth(self, zone: str, epoch_id: int | None, levels: int) -> BookDepth:
        self._require_zone(zone)
        engine = self._require_engine()
        target = epoch_id if epoch_id is not None else self.first_open_epoch(self._clock.now())
        self._epoch(target)
        return engine.depth(zone, target, levels)

    async def reference_price(
        self, zone_id: str, epoch_id: int | None, *, from_zone: str | None = None
    ) -> ReferenceQuote:
        """The advisory price for one zone and epoch (never a limit on anyone's order),
        fed by the market's own data (docs/market.md, "Reference price"):

        - base: the governed ``refprice_base_per_kwh`` when non-zero, else the zone's
          last trade price, else the midpoint of its tariff at the delivery hour;
        - supply/demand: the open quantities of that epoch's book;
        - state of charge: the stored over the rated energy of the zone's batteries
          (the state of charge their owners or nodes report), neutral without any;
        - distance: the zone rate of that epoch from ``from_zone`` (default: the
          zone itself) to the zone;
        - time of use: the zone's tariff at the delivery hour;
        - reliability: delivered over contracted Wh of the measured deliveries of
          the suppliers with a sell order in the book (of every supplier of the
          zone when the book has none), neutral without history;
        - weights: the governed ``refprice_*_weight_bps`` of that epoch's set.
        """
        await self.refresh_view()
        zone = self._require_zone(zone_id)
        source = self._require_zone(from_zone) if from_zone is not None else zone
        engine = self._require_engine()
        target = epoch_id if epoch_id is not None else self.first_open_epoch(self._clock.now())
        hour = self._epoch(target).start.hour
        band = zone.tariff.band_at(hour)
        parameters = self.parameters_for(target)
        orders = engine.open_orders(zone=zone_id, epoch_id=target)
        demand = sum(o.remaining_wh for o in orders if o.side is Side.BUY)
        supply = sum(o.remaining_wh for o in orders if o.side is Side.SELL)
        sellers = {o.owner for o in orders if o.side is Side.SELL}
        async with self._db.read() as session:
            last = await trade_repo.recent_trades(session, zone=zone_id, limit=1)
            storage = await reference_repo.zone_storage(session, zone_id)
            record = (
                await reference_repo.delivery_record(session, sellers=sellers)
                if sellers
                else await reference_repo.delivery_record(session, zone=zone_id)
            )
        base, base_source = base_price(
            parameters, last[0].price if last else None, band.feed_in, band.retail
        )
        soc = (
            storage.stored_wh * PPM_PER_UNIT // storage.capacity_wh
            if storage.capacity_wh > 0
            else PPM_PER_UNIT // 2
        )
        reliability = (
            min(record.delivered_wh, record.contracted_wh) * PPM_PER_UNIT // record.contracted_wh
            if record.contracted_wh > 0
            else PPM_PER_UNIT
        )
        rate = self.rates_for(target).rate(source, zone)
        inputs = ReferencePriceInputs(
            base_price=base,
            demand_wh=demand,
            supply_wh=supply,
            storage_soc_ppm=soc,
            wheeling_per_kwh=rate.wheeling_per_kwh,
            loss_bps=rate.loss_bps,
            hour=hour,
            tariff=zone.tariff,
            reliability_ppm=reliability,
            evidence={
                "supply_demand": {
                    "sell_orders": sum(o.side is Side.SELL for o in orders),
                    "buy_orders": sum(o.side is Side.BUY for o in orders),
                },
                "state_of_charge": {
                    "batteries": storage.batteries,
                    "stored_wh": storage.stored_wh,
                    "capacity_wh": storage.capacity_wh,
                },
                "reliability": {
                    "suppliers": len(sellers),
                    "deliveries": record.trades,
                    "delivered_wh": record.delivered_wh,
                    "contracted_wh": record.contracted_wh,
                },
            },
        )
        weights = governed_weights(parameters, self.reference_weights)
        explained = explain(inputs, weights)
        return ReferenceQuote(
            zone_id,
            target,
            explained.price,
            band.feed_in,
            band.retail,
            base=base,
            factors=tuple((f.name, f.value) for f in explained.factors),
            base_source=base_source,
            from_zone=source.id,
            breakdown=explained.factors,
        )

    def open_orders(self) -> list[Order]:
        return self._require_engine().open_orders()

    def overview(self) -> list[ZoneMarket]:
        now = self._clock.now()
        current = self.schedule.epoch_id_at(now)
        first_open = self.schedule.first_open_epoch(now)
        upcoming = [self._epoch_info(first_open + i, now) for i in range(self._upcoming)]
        return [
            ZoneMarket(
                zone=zone.id,
                name=zone.name,
                mechanism=self.mechanism(zone.id),
                current_epoch=self._epoch_info(current, now),
                upcoming=upcoming,
            )
            for zone in self._zones.values()
        ]

    def epoch_info(self, epoch_id: int) -> EpochInfo:
        return self._epoch_info(epoch_id, self._clock.now())

    async def closed_epoch(self, epoch_id: int) -> EpochRow:
        """A closed epoch's row (``epoch_not_closed`` if its gate has not closed)."""
        async with self._db.read() as session:
            row = await session.get(EpochRow, epoch_id)
        if row is None:
            raise EpochNotClosedError("the epoch's gate has not closed", epoch_id=epoch_id)
        return row

    async def closed_epochs(self, *, limit: int, offset: int) -> list[EpochRow]:
        async with self._db.read() as session:
            return await epoch_repo.list_closed_epochs(session, limit=limit, offset=offset)

    async def close_gate(self, epoch_id: int, *, forced: bool) -> ClosureSummary:
        """Close one epoch's gate: run its auctions, expire what is left, commit, announce.

        ``forced`` closes it now even though its gate time has not come; the
        epoch then accepts no more orders.
        """
        self._require_writer()
        async with self._lock:
            summary, events = await self._close_gate_locked(epoch_id, forced=forced)
        await self._publish(events)
        return summary

    async def close_due_epochs(self) -> list[ClosureSummary]:
        """Close every epoch with orders whose gate time has passed (the clock's job).

        That is every epoch with open orders in the books, and every epoch that
        took an order and has not closed yet, even if nothing of it is left in
        the books (all filled or cancelled): its trades settle only once it is
        closed. A closure that fails stays due and is retried on the next call.
        """
        if not self.is_writer:
            return []  # the writer's clock closes the gates
        if self._stale:
            # A failed closure may have moved the engine: the books must be
            # the database's again before anything is found due.
            async with self._lock:
                await self._current_engine()
        now = self._clock.now()
        if self._engine is None:
            return []
        # Runs every clock tick: must not walk every resting order.
        epochs = self._engine.epochs_with_open_orders() | (self._unclosed - self._closed)
        due = sorted(e for e in epochs if self.schedule.epoch(e).gate_closure <= now)
        summaries = []
        for epoch_id in due:
            summaries.append(await self.close_gate(epoch_id, forced=False))
        return summaries

    # internals ------------------------------------------------------------------

    async def _close_gate_locked(
        self, epoch_id: int, *, forced: bool
    ) -> tuple[ClosureSummary, list[Event]]:
        engine = await self._current_engine()
        started = time.perf_counter()
        now = self._clock.now()
        gate = self._epoch(epoch_id).gate_closure
        # A forced closure runs the engine as of the gate time, which it requires to have come.
        engine_now = max(now, gate)
        moved = False
        congestion: list[dict[str, object]] = []
        try:
            async with self._db.write() as session:
                await self._fence(session)
                closure = engine.close_gate(epoch_id, engine_now)
                moved = True
                congestion = congestion_view(closure.congestion)
                await record_engine_changes(
                    session,
                    new_rows=[],
                    changed=closure.touched,
                    trades=closure.trades,
                    at=now,
                    lock=self._db.locks_rows,
                )
                # Continuous trades happened before the gate: count the epoch's, not the closure's.
                epoch_trades = await trade_repo.count_epoch_trades(session, epoch_id)
                if await session.get(EpochRow, epoch_id) is None:
                    session.add(
                        EpochRow(
                            id=epoch_id,
                            closed_at=now,
                            trade_count=epoch_trades,
                            expired_count=len(closure.expired),
                            clearing_prices=json.dumps(closure.clearing_prices),
                            forced=forced and now < gate,
                            congestion=json.dumps(congestion) if closure.congestion else None,
                        )
                    )
        except BaseException:
            if moved:
                await self._resync()
            raise
        self._closed.add(epoch_id)
        self._unclosed.discard(epoch_id)
        self._metrics.epoch_clearing.observe(time.perf_counter() - started)
        for trade in closure.trades:
            self._metrics.trades.labels(trade.zone).inc()
            self._metrics.traded_wh.labels(trade.zone).inc(trade.qty_wh)
        events = [trade_event(trade) for trade in closure.trades]
        events.extend(order_event(EventType.ORDER_EXPIRED, order) for order in closure.expired)
        events.extend(books_touched(closure.touched, closure.trades))
        events.append(
            Event(
                EventType.EPOCH_CLEARED,
                {
                    "epoch_id": epoch_id,
                    "trades": epoch_trades,
                    "expired": len(closure.expired),
                    "clearing_prices": closure.clearing_prices,
                    "congestion": congestion,
                },
            )
        )
        summary = ClosureSummary(
            epoch_id,
            list(closure.trades),
            len(closure.expired),
            dict(closure.clearing_prices),
            forced,
            congestion,
        )
        return summary, events

    async def _write_queued_submissions(self) -> None:
        """The single writer: take what is queued, in arrival order, one batch at a time."""
        try:
            while self._queue:
                await self._wait_for_the_burst()
                # Whole groups only (a batch request is one group), up to max_batch
                # submissions unless a single group is larger.
                taken = 0
                size = 0
                for group in self._queue:
                    if taken and size + len(group.submissions) > self.max_batch:
                        break
                    taken += 1
                    size += len(group.submissions)
                groups = self._queue[:taken]
                del self._queue[:taken]
                batch = [pending for group in groups for pending in group.submissions]
                self._last_group_size = len(batch)
                try:
                    async with self._lock:
                        outcomes, events = await self._submit_batch(batch)
                except asyncio.CancelledError:
                    for group in groups:
                        group.future.cancel()
                    raise
                except Exception as exc:
                    for group in groups:
                        _settle(group.future, exc)
                    continue
                # Committed: the callers are answered whatever becomes of the events.
                start = 0
                for group in groups:
                    end = start + len(group.submissions)
                    _settle(group.future, outcomes[start:end])
                    start = end
                await self._publish(events)
        except asyncio.CancelledError:
            # Shutting down: nobody will take the rest, so their callers must not wait.
            for group in self._queue:
                group.future.cancel()
            self._queue.clear()
            raise

    async def _wait_for_the_burst(self) -> None:
        """Wait :data:`LINGER_S` if the last group was large and few are queued yet."""
        last = self._last_group_size
        if last < LINGER_AFTER:
            return
        queued = sum(len(group.submissions) for group in self._queue)
        if queued < last:
            await asyncio.sleep(LINGER_S)

    async def _submit_batch(
        self, batch: Sequence[_PendingSubmission]
    ) -> tuple[list[Submission | DomainError], list[Event]]:
        """Run a batch through the engine and commit it in one transaction.

        A submission refused by a rule (a :class:`DomainError`) changes nothing
        and does not disturb the others. Any other failure fails the whole
        batch: the transaction rolls back and the engine is rebuilt from the
        database, so nothing of the batch remains anywhere.
        """
        engine = await self._current_engine()
        now = self._clock.now()
        outcomes: list[Submission | DomainError] = []
        accepted: list[SubmitResult] = []
        bodies: list[dict[str, Any]] = []  # the answer's body of each accepted submission
        try:
            async with self._db.write() as session:
                await self._fence(session)
                # Forwarded submissions another replica withdrew (or that were
                # answered already) are left out; the others stay locked until commit.
                forwarded = sorted({p.inbox_id for p in batch if p.inbox_id is not None})
                live = await writer_repo.lock_pending(session, forwarded) if forwarded else set()
                await lock_balances(
                    session,
                    [(p.principal.user_id, escrow_asset(p.request.side)) for p in batch],
                    lock=self._db.locks_rows,
                )
                seen = await _BatchLookups.load(session, batch)
                # One `now` and the lock held: the same first open epoch for the whole batch.
                first_open = self.first_open_epoch(now)
                changes = EngineChanges(session, at=now, lock=self._db.locks_rows)
                for pending in batch:
                    if pending.inbox_id is not None and pending.inbox_id not in live:
                        outcomes.append(
                            NotMarketWriterError("withdrawn by the replica that sent it")
                        )
                        continue
                    try:
                        outcome, result = await self._submit_one(
                            session, engine, pending, now, first_open, seen, changes
                        )
                    except DomainError as refused:
                        outcomes.append(refused)
                        continue
                    outcomes.append(outcome)
                    if result is not None:
                        accepted.append(result)
                        bodies.append(outcome.body)
                await changes.write()
                if live:
                    answers: dict[int, list[dict[str, Any]]] = {}
                    for pending, answered in zip(batch, outcomes, strict=True):
                        if pending.inbox_id in live:
                            answers.setdefault(pending.inbox_id, []).append(
                                outcome_to_json(answered)
                            )
                    await writer_repo.answer(
                        session,
                        {inbox_id: json.dumps(found) for inbox_id, found in answers.items()},
                        now,
                    )
        except BaseException:
            # The engine may be ahead of the rolled-back database (even the
            # submission that failed may have reached it): resync it.
            await self._resync()
            raise
        # The transaction is committed: only now may anyone hear of it (all at once).
        events: list[Event] = []
        published = datetime.now(UTC)
        for result, body in zip(accepted, bodies, strict=True):
            self._unclosed.add(result.order.epoch_id)
            # The events carry the views the answers carry (built once).
            events.append(
                order_event(EventType.ORDER_CREATED, result.order, body["order"], at=published)
            )
            if result.trades:  # most orders of a batch rest: no generator for nothing
                events.extend(
                    trade_event(trade, view, at=published)
                    for trade, view in zip(result.trades, body["trades"], strict=True)
                )
        self._count(accepted)
        # One "refetch this book" per book the transaction changed, after its orders and trades.
        events.extend(
            books_touched(
                [order for result in accepted for order in (result.order, *result.touched)],
                [trade for result in accepted for trade in result.trades],
                at=published,
            )
        )
        return outcomes, events

    async def _submit_one(
        self,
        session: AsyncSession,
        engine: MarketEngine,
        pending: _PendingSubmission,
        now: datetime,
        first_open: int,
        seen: _BatchLookups,
        changes: EngineChanges,
    ) -> tuple[Submission, SubmitResult | None]:
        """One submission inside the batch's transaction; a refusal leaves no change."""
        principal, request, key = pending.principal, pending.request, pending.key
        owner = principal.user_id
        if key is not None:
            stored = seen.responses.get((owner, key))
            if stored is not None:
                return _replay(stored, pending.fingerprint), None
        client_id = request.client_order_id
        if client_id is not None and (owner, client_id) in seen.client_ids:
            raise DuplicateClientOrderIdError(
                "this client order id was used for another order",
                client_order_id=request.client_order_id,
            )
        order = self._new_order(principal.user_id, request, now, first_open)
        # The market's rules (gate, price bounds) are judged before the balance,
        # so a caller learns of a price out of bounds whatever their balance.
        engine.check(order, now)
        asset = escrow_asset(order.side)
        escrow = escrow_required(
            order.side, order.qty_wh, order.limit_price, self.fee_for(order.epoch_id)
        )
        locks = self._db.locks_rows
        await lock_escrow(session, order.owner, asset, escrow, lock=locks)
        try:
            # Checked above, and nothing changes the engine without the lock this holds.
            result = engine.submit_checked(order, now)
        except DomainError:
            # The engine refused it unchanged; give the escrow back within this transaction.
            await release_escrow(session, order.owner, asset, escrow, lock=locks)
            raise
        row = order_repo.new_order_row(
            result.order, escrow_asset=asset.value, escrow=escrow, at=now
        )
        touched = [o for o in result.touched if o.id != result.order.id]
        await changes.add(new_rows=[row], changed=touched, trades=result.trades)
        body = {
            "order": order_view(result.order),
            "trades": [trade_view(t) for t in result.trades],
            "limited_by": list(result.limited_by),
        }
        if client_id is not None:
            seen.client_ids.add((owner, client_id))
        if key is not None:
            stored = IdempotencyRow(
                owner_id=owner,
                key=key,
                request_hash=pending.fingerprint,
                status_code=201,
                response_body=json.dumps(body),
                created_at=now,
            )
            session.add(stored)
            seen.responses[(owner, key)] = stored
        return Submission(201, body, replayed=False), result

    def _new_order(
        self, owner: str, request: OrderRequest, now: datetime, first_open: int
    ) -> Order:
        """The order ``request`` asks for; ``first_open`` is :meth:`first_open_epoch` at ``now``,
        the epoch of a request that names none."""
        zone = self._require_zone(request.zone)
        self._require_not_paused(zone.id)
        if request.qty_wh <= 0:
            raise InvalidQuantityError("quantity must be a positive number of Wh")
        epoch_id = request.epoch_id if request.epoch_id is not None else first_open
        gate = self._epoch(epoch_id).gate_closure
        if epoch_id in self._closed or now >= gate:
            raise GateClosedError("the gate of this epoch has closed", epoch_id=epoch_id)
        limit = request.limit_price
        if limit is None:
            if request.kind is OrderKind.LIMIT:
                raise PriceOutOfBoundsError("a limit order needs a limit price")
            limit = self._protection_price(zone, request.side, epoch_id)
        if limit < 0:
            raise PriceOutOfBoundsError("prices are not negative", limit_price=limit)
        return Order(
            id=new_time_ordered_id(),
            owner=owner,
            side=request.side,
            qty_wh=request.qty_wh,
            limit_price=limit,
            zone=zone.id,
            epoch_id=epoch_id,
            kind=request.kind,
            client_order_id=request.client_order_id,
            created_at=now,
        )

    def _protection_price(self, zone: Zone, side: Side, epoch_id: int) -> int:
        """A market order without a limit is bounded by the zone's price bounds at delivery
        time (the tariffs narrowed by the governed margins)."""
        low, high = self.bounds_for(zone, epoch_id)
        return high if side is Side.BUY else low

    def _epoch(self, epoch_id: int) -> DeliveryEpoch:
        """The epoch's times; ids too large for a calendar date are refused."""
        try:
            return self.schedule.epoch(epoch_id)
        except (OverflowError, ValueError) as exc:
            raise InvalidEpochError("no such epoch in the calendar", epoch_id=epoch_id) from exc

    def _require_not_paused(self, zone_id: str) -> None:
        pause = self._paused.get(zone_id)
        if pause is not None:
            raise MarketPausedError(
                "the operator paused this market's order intake; cancelling still works",
                zone=zone_id,
                reason=pause.reason,
                paused_at=pause.paused_at.isoformat(),
            )

    def _require_zone(self, zone_id: str) -> Zone:
        zone = self._zones.get(zone_id)
        if zone is None:
            raise UnknownZoneError("unknown zone", zone=zone_id)
        return zone

    def _require_engine(self) -> MarketEngine:
        if self._stale:
            raise StorageUnavailableError(
                "the market is waiting for the database to rebuild its books"
            )
        if self._engine is None:
            raise UnknownZoneError("the market has no zones yet")
        return self._engine

    async def _current_engine(self) -> MarketEngine:
        """The engine, rebuilt first if a failure left it stale (caller holds the lock)."""
        if self._stale:
            await self._rebuild_from_database()
        return self._require_engine()

    async def _resync(self) -> None:
        """After a failed commit: make the engine the database's again, or mark it stale.

        Never raises (the caller re-raises what failed); a stale engine is
        rebuilt by the next use under the lock and by the next clock tick.
        """
        self._stale = True
        try:
            await self._rebuild_from_database()
        except Exception as exc:
            _log.warning("market_rebuild_failed", error=type(exc).__name__)

    def _epoch_info(self, epoch_id: int, now: datetime) -> EpochInfo:
        epoch = self._epoch(epoch_id)
        return EpochInfo(
            id=epoch_id,
            start=epoch.start,
            end=epoch.end,
            gate_closure=epoch.gate_closure,
            open_for_orders=epoch_id not in self._closed and now < epoch.gate_closure,
        )

    def _count(self, accepted: Sequence[SubmitResult]) -> None:
        """Count placed orders and their trades: one increment per series, not per order."""
        orders: Counter[tuple[str, str]] = Counter()
        trades: Counter[str] = Counter()
        traded_wh: Counter[str] = Counter()
        for result in accepted:
            orders[(result.order.zone, result.order.side.value)] += 1
            for trade in result.trades:
                trades[trade.zone] += 1
                traded_wh[trade.zone] += trade.qty_wh
        for (zone, side), count in orders.items():
            self._metrics.orders.labels(zone, side).inc(count)
        for zone, count in trades.items():
            self._metrics.trades.labels(zone).inc(count)
            self._metrics.traded_wh.labels(zone).inc(traded_wh[zone])

    async def _rebuild_from_database(self) -> None:
        async with self._db.read() as session:
            zone_rows = await zone_repo.all_zones(session)
            pause_rows = list(await session.scalars(select(MarketPauseRow)))
            open_orders = await order_repo.open_orders(session)
            last_trade_seq = await trade_repo.max_trade_seq(session)
            current = self.schedule.epoch_id_at(self._clock.now())
            closed = await epoch_repo.closed_epoch_ids(session, current)
        specs = [spec_from_row(row) for row in zone_rows]
        self._zones = {spec.id: spec.to_zone() for spec in specs}
        self._paused = {
            row.zone_id: MarketPause(row.zone_id, row.paused_by, row.reason, row.paused_at)
            for row in pause_rows
        }
        self._mechanisms = {spec.id: spec.mechanism for spec in specs}
        self._closed = closed
        if not self._zones:
            self._engine = None
            self._stale = False
            return
        config = MarketConfig(
            zones=self._zones,
            schedule=self.schedule,
            fee_bps=self._fee_bps,
            fee_changes=dict(self._fee_changes),
            rates=self.rates,
            rate_changes={start: self.rates_for(start) for start in self._parameter_sets},
            margin_changes={
                start: _margins(values) for start, values in self._parameter_sets.items()
            },
            capacity_changes={
                start: _capacities(values) for start, values in self._parameter_sets.items()
            },
            mechanisms=self._mechanisms,
            cross_zone=self._cross_zone,
        )
        engine = MarketEngine(config)
        engine.restore([replace(order) for order in open_orders], last_trade_seq=last_trade_seq)
        self._engine = engine
        self._stale = False

    async def _publish(self, events: Iterable[Event]) -> None:
        """Tell the bus, after the commit: a bus failure loses the events (the bus
        is at most once), never the committed change or its answer."""
        for event in events:
            try:
                await self._bus.publish(event)
            except Exception as exc:
                _log.warning(
                    "event_publish_failed", event_type=event.type.value, error=type(exc).__name__
                )


@dataclass(frozen=True, slots=True)
class _BatchLookups:
    """What a batch's idempotency checks need, read in two queries at its start and
    kept up to date as its submissions are placed (instead of two reads per submission).

    The writer holds the market lock for the whole batch, so nothing else places
    orders or stores responses meanwhile; the unique indexes still guard both.
    """

    responses: dict[tuple[str, str], IdempotencyRow]
    client_ids: set[tuple[str, str]]

    @classmethod
    async def load(
        cls, session: AsyncSession, batch: Sequence[_PendingSubmission]
    ) -> _BatchLookups:
        keys = [(p.principal.user_id, p.key) for p in batch if p.key is not None]
        client_ids = [
            (p.principal.user_id, p.request.client_order_id)
            for p in batch
            if p.request.client_order_id is not None
        ]
        return cls(
            await idem_repo.stored_responses(session, keys),
            await order_repo.used_client_ids(session, client_ids),
        )


@dataclass(slots=True)
class _PendingSubmission:
    principal: Final[Principal]
    request: Final[OrderRequest]
    key: Final[str | None]
    fingerprint: Final[str]
    inbox_id: Final[int | None] = None
    """The inbox row of a submission another replica handed over."""


@dataclass(slots=True)
class _Group:
    """Submissions that share one transaction (a request's), answered together: one
    future for the group, done with an answer per submission once it committed, or with
    the transaction's failure (a thousand orders need not make a thousand futures)."""

    submissions: Final[list[_PendingSubmission]]
    future: Final[asyncio.Future[list[Submission | DomainError]]]


Forward = Callable[
    [Principal, Sequence[OrderRequest], Sequence[str | None]],
    Awaitable[list[Submission | DomainError]],
]
"""Hands submissions (with their idempotency keys) to the elected writer and returns its
answers, once it has committed them."""


def request_to_json(request: OrderRequest) -> dict[str, Any]:
    return {
        "side": request.side.value,
        "qty_wh": request.qty_wh,
        "zone": request.zone,
        "epoch_id": request.epoch_id,
        "limit_price": request.limit_price,
        "kind": request.kind.value,
        "client_order_id": request.client_order_id,
    }


def request_from_json(raw: Mapping[str, Any]) -> OrderRequest:
    return OrderRequest(
        side=Side(raw["side"]),
        qty_wh=int(raw["qty_wh"]),
        zone=str(raw["zone"]),
        epoch_id=raw["epoch_id"],
        limit_price=raw["limit_price"],
        kind=OrderKind(raw["kind"]),
        client_order_id=raw["client_order_id"],
    )


def outcome_to_json(outcome: Submission | DomainError) -> dict[str, Any]:
    """An answer as the inbox keeps it: a submission, or the rule that refused it."""
    if isinstance(outcome, Submission):
        return {
            "status_code": outcome.status_code,
            "body": outcome.body,
            "replayed": outcome.replayed,
        }
    return {
        "error": outcome.code,
        "detail": outcome.detail,
        "context": json.loads(json.dumps(outcome.context, default=str)),
    }


def outcome_from_json(raw: Mapping[str, Any]) -> Submission | DomainError:
    """The inbox's answer as the writer's own route would have it (same error class)."""
    if "error" not in raw:
        return Submission(int(raw["status_code"]), dict(raw["body"]), bool(raw["replayed"]))
    cls = _error_classes().get(str(raw["error"]), DomainError)
    error = cls.__new__(cls)
    DomainError.__init__(error, str(raw["detail"]), **dict(raw["context"]))
    retry = getattr(cls, "retry_after_s", None)
    if retry is not None:
        error.headers = {"Retry-After": str(retry)}  # type: ignore[attr-defined]
    return error


def _error_classes() -> dict[str, type[DomainError]]:
    found: dict[str, type[DomainError]] = {}
    stack: list[type[DomainError]] = [DomainError]
    while stack:
        cls = stack.pop()
        found.setdefault(cls.code, cls)
        stack.extend(cls.__subclasses__())
    return found


def _settle(
    future: asyncio.Future[list[Submission | DomainError]],
    outcome: list[Submission | DomainError] | Exception,
) -> None:
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _replay(stored: IdempotencyRow, fingerprint: str) -> Submission:
    if stored.request_hash != fingerprint:
        raise IdempotencyKeyReusedError("this idempotency key was used for a different request")
    return Submission(stored.status_code, json.loads(stored.response_body), replayed=True)


def _margins(parameters: Mapping[str, int]) -> BoundMargins:
    """The governed price-bound margins of a parameter set (0 where absent; a value
    above the engine's limit is held at it, as the contract's maximum is the same)."""
    return BoundMargins(
        min(max(parameters.get(PRICE_FLOOR_MARGIN, 0), 0), MAX_MARGIN_BPS),
        min(max(parameters.get(PRICE_CEILING_MARGIN, 0), 0), MAX_MARGIN_BPS),
    )


def _capacities(parameters: Mapping[str, int]) -> dict[tuple[str, Direction], int]:
    """The governed link capacities of a parameter set, per (zone, direction)."""
    found = {}
    for name, value in parameters.items():
        link = link_of(name)
        if link is not None:
            zone, export = link
            found[(zone, Direction.UP if export else Direction.DOWN)] = max(value, 0)
    return found
