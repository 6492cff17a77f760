"""The market engine: every zone's books for every open epoch, behind one facade.

The engine validates an order, numbers it (``seq``: time priority), and then
either matches it at once (continuous zones) or rests it until gate closure
(call-auction zones). It mutates the :class:`Order` records it is given and
hands back what changed, so a service can persist exactly that. It does no
I/O and reads no clock: callers pass ``now``.

Rules, in ``docs/market.md``:

- price-time priority; trades at the resting order's price;
- a buyer's limit is landed (per delivered kWh, wheeling included), so a
  continuous buyer takes the cheapest landed offer across continuous zones;
- self-trade prevention cancels the newest: when the next match in priority
  would be against the incoming order's own owner, the rest of the incoming
  order is cancelled and the resting order keeps its place;
- cross-zone matches never move more than a zone's export capacity or the
  other zone's import capacity per epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from wattx.domain import Order, OrderKind, OrderStatus, Side, Trade, ValidationError, Zone
from wattx.domain.ids import new_time_ordered_id
from wattx.market.book import ContinuousBook, Fill
from wattx.market.config import MarketConfig
from wattx.market.coupling import LinkReport, run_coupled_auction
from wattx.market.cross_zone import (
    MultiFill,
    Source,
    ZoneLinks,
    fully_fillable,
    match_buy_across,
    match_sell_across,
)
from wattx.market.depth import BookDepth, book_depth, empty_depth
from wattx.market.errors import (
    DuplicateClientOrderIdError,
    DuplicateOrderError,
    GateClosedError,
    GateNotClosedError,
    InvalidOrderStateError,
    InvalidQuantityError,
    NotOrderOwnerError,
    OrderKindNotSupportedError,
    OrderNotFoundError,
    OrderNotOpenError,
    PriceOutOfBoundsError,
    UnknownZoneError,
)
from wattx.market.execution import make_trade
from wattx.market.gate_auction import run_zone_auction
from wattx.market.mechanism import Mechanism
from wattx.market.rates import ZoneRate

_OPEN = OrderStatus.OPEN


@dataclass(slots=True)
class SubmitResult:
    """An accepted order after matching, the trades it made, and the resting orders it filled.

    Its fields are ``Final`` rather than the class frozen: the type checker refuses any
    assignment, and one is built per order at a plain dataclass's cost."""

    order: Final[Order]
    trades: Final[list[Trade]]
    touched: Final[list[Order]] = field(default_factory=list)
    limited_by: Final[tuple[str, ...]] = ()
    """Grid limits that stopped matching while the order still had Wh open
    (``child-parent:up|down`` for a tree link, ``zone:export|import`` without one)."""


@dataclass(frozen=True)
class GateClosure:
    """What closing an epoch's gate did: auction trades, expiries, clearing prices."""

    epoch_id: int
    trades: list[Trade]
    expired: list[Order]
    touched: list[Order]
    clearing_prices: dict[str, int | None]
    congestion: list[LinkReport] = field(default_factory=list)
    """Per grid link direction: flow, capacity, shadow price, rent (coupled auction only)."""


@dataclass(frozen=True, slots=True)
class _EpochTerms:
    """A zone's gate closure and price bounds for one epoch (cached: read on every submit)."""

    gate_closure: datetime
    feed_in: int
    retail: int


class MarketEngine:
    """Continuous books and call auctions for every zone of one market."""

    def __init__(
        self, config: MarketConfig, *, id_factory: Callable[[], str] = new_time_ordered_id
    ) -> None:
        self._config = config
        self._new_id = id_factory
        zones = config.zones
        # The zone-rate table per first epoch it applies to (None: before any change).
        self._rate_tables: dict[int | None, dict[tuple[str, str], ZoneRate]] = {
            start: {
                (seller, buyer): table.rate(zones[seller], zones[buyer])
                for seller in zones
                for buyer in zones
            }
            for start, table in [(None, config.rates), *config.rate_changes.items()]
        }
        self._rate_starts = sorted(start for start in config.rate_changes)
        self._mechanisms = {zone: config.mechanism(zone) for zone in zones}
        self._orders: dict[str, Order] = {}
        self._client_ids: dict[tuple[str, str], str] = {}
        self._epoch_order_ids: dict[int, list[str]] = {}
        self._books: dict[tuple[str, int], ContinuousBook] = {}
        self._epoch_books: dict[int, dict[str, ContinuousBook]] = {}
        self._continuous_books: dict[int, list[tuple[str, ContinuousBook]]] = {}
        self._terms: dict[tuple[str, int], _EpochTerms] = {}
        self._links = ZoneLinks(config.zones, config.grid, config.capacity_for)
        self._closed_epochs: set[int] = set()
        self._order_seq = 0
        self._trade_seq = 0

    @property
    def config(self) -> MarketConfig:
        return self._config

    # -- commands -----------------------------------------------------------------

    def submit(self, order: Order, now: datetime) -> SubmitResult:
        """Validate, number and match (or rest) ``order``; on error nothing changes."""
        self._check_new(order, now, replacing=None)
        return self._accept(order, now)

    def check(self, order: Order, now: datetime) -> None:
        """Raise what :meth:`submit` would refuse ``order`` for, without changing anything."""
        self._check_new(order, now, replacing=None)

    def submit_checked(self, order: Order, now: datetime) -> SubmitResult:
        """:meth:`submit` for an order :meth:`check` has passed at ``now``, with nothing
        changed in the engine since: the checks are not run twice."""
        return self._accept(order, now)

    def cancel(self, order_id: str, owner: str | None = None) -> Order:
        """Cancel an open order's remaining quantity (checking ``owner`` when given)."""
        order = self._open_order(order_id, owner)
        self._books[(order.zone, order.epoch_id)].cancel(order)
        return order

    def amend(
        self,
        order_id: str,
        owner: str,
        *,
        new_order_id: str,
        qty_wh: int,
        limit_price: int,
        now: datetime,
    ) -> tuple[Order, SubmitResult]:
        """Cancel ``order_id`` and submit a replacement (which loses time priority).

        The replacement keeps side, zone, epoch, kind and client order id. It is
        validated before the original is touched, so an error changes nothing.
        """
        old = self._open_order(order_id, owner)
        new = Order(
            id=new_order_id,
            owner=old.owner,
            side=old.side,
            qty_wh=qty_wh,
            limit_price=limit_price,
            zone=old.zone,
            epoch_id=old.epoch_id,
            kind=old.kind,
            client_order_id=old.client_order_id,
            created_at=now,
        )
        self._check_new(new, now, replacing=old)
        self._books[(old.zone, old.epoch_id)].cancel(old)
        return old, self._accept(new, now)

    def close_gate(self, epoch_id: int, now: datetime) -> GateClosure:
        """Run the epoch's call auctions, then expire every order still open.

        Afterwards the engine forgets the epoch's orders (``get_order`` no longer
        finds them): they are final and the caller persists what changed.
        """
        _require_aware(now)
        if now < self._config.schedule.epoch(epoch_id).gate_closure:
            raise GateNotClosedError("the epoch's gate has not closed yet", epoch_id=epoch_id)
        self._closed_epochs.add(epoch_id)
        books = self._epoch_books.pop(epoch_id, {})
        self._continuous_books.pop(epoch_id, None)
        trades: list[Trade] = []
        touched: dict[Order, None] = {}
        prices: dict[str, int | None] = {}
        congestion: list[LinkReport] = []
        auction_zones = [
            zone_id
            for zone_id in sorted(self._config.zones)
            if self._config.mechanism(zone_id) is not Mechanism.CONTINUOUS
        ]
        if self._config.grid is not None and auction_zones:
            congestion = self._close_coupled(
                epoch_id, books, auction_zones, now, trades, touched, prices
            )
        else:
            self._close_zones(epoch_id, books, auction_zones, now, trades, touched, prices)
        expired: list[Order] = []
        for zone_id, book in books.items():
            for order in book.open_orders():
                if order.is_open:
                    order.cancelled_wh += order.remaining_wh
                    order.status = OrderStatus.EXPIRED
                    expired.append(order)
                    touched[order] = None
            del self._books[(zone_id, epoch_id)]
        self._links.drop_epoch(epoch_id)
        self._forget_epoch(epoch_id)
        return GateClosure(epoch_id, trades, expired, list(touched), prices, congestion)

    def _close_zones(
        self,
        epoch_id: int,
        books: dict[str, ContinuousBook],
        auction_zones: list[str],
        now: datetime,
        trades: list[Trade],
        touched: dict[Order, None],
        prices: dict[str, int | None],
    ) -> None:
        """Each auction zone cleared on its own (no grid tree)."""
        for zone_id in auction_zones:
            mechanism = self._config.mechanism(zone_id)
            book = books.get(zone_id)
            if book is None:
                prices[zone_id] = None
                continue
            open_orders = [o for o in book.open_orders() if o.is_open]
            rate = self._rates(epoch_id)[(zone_id, zone_id)]
            clearing, matches = run_zone_auction(
                [o for o in open_orders if o.side is Side.BUY],
                [o for o in open_orders if o.side is Side.SELL],
                rate,
                mechanism,
            )
            prices[zone_id] = clearing.price
            for match in matches:
                trades.append(
                    self._trade(
                        match.buy,
                        match.sell,
                        match.sold_wh,
                        match.delivered_wh,
                        match.price,
                        rate,
                        now,
                    )
                )
                touched[match.buy] = None
                touched[match.sell] = None

    def _close_coupled(
        self,
        epoch_id: int,
        books: dict[str, ContinuousBook],
        auction_zones: list[str],
        now: datetime,
        trades: list[Trade],
        touched: dict[Order, None],
        prices: dict[str, int | None],
    ) -> list[LinkReport]:
        """Every auction zone cleared at once over the grid tree (see :mod:`wattx.grid`).

        Link capacity already used by the epoch's continuous cross-zone trades is
        taken off first. A match's congestion fee is added to its trade's
        wheeling fee: the buyer pays it and settlement moves it to the grid's
        (fee) account by the wheeling path.
        """
        grid = self._config.grid
        assert grid is not None
        grid = self._links.remaining(grid, epoch_id)
        open_orders = [
            o
            for zone_id in auction_zones
            if zone_id in books
            for o in books[zone_id].open_orders()
            if o.is_open
        ]
        pricing = {zone_id: self._config.mechanism(zone_id) for zone_id in auction_zones}
        clearing = run_coupled_auction(
            [o for o in open_orders if o.side is Side.BUY],
            [o for o in open_orders if o.side is Side.SELL],
            grid,
            self._rates(epoch_id),
            pricing,
        )
        for zone_id in auction_zones:
            prices[zone_id] = clearing.seller_prices.get(zone_id)
        for match in clearing.matches:
            trades.append(
                self._trade(
                    match.buy,
                    match.sell,
                    match.sold_wh,
                    match.delivered_wh,
                    match.price,
                    match.rate,
                    now,
                    congestion_fee=match.congestion_fee,
                )
            )
            touched[match.buy] = None
            touched[match.sell] = None
        return clearing.links

    def _forget_epoch(self, epoch_id: int) -> None:
        """Drop a closed epoch's orders: they are final, and the store keeps them."""
        for order_id in self._epoch_order_ids.pop(epoch_id, []):
            order = self._orders.pop(order_id)
            if order.client_order_id is not None:
                key = (order.owner, order.client_order_id)
                if self._client_ids.get(key) == order_id:
                    del self._client_ids[key]
        for zone_id in self._config.zones:
            self._terms.pop((zone_id, epoch_id), None)

    def restore(self, orders: Iterable[Order], last_trade_seq: int = 0) -> None:
        """Rebuild books from persisted open orders, in ``seq`` order, without matching.

        Numbering continues after the largest order ``seq`` and ``last_trade_seq``.
        All orders are checked before any is inserted.
        """
        batch = sorted(orders, key=lambda o: o.seq)
        seen: set[str] = set()
        for order in batch:
            self._zone(order.zone)
            if not order.is_open or order.remaining_wh <= 0:
                raise InvalidOrderStateError("only open orders can be restored", order_id=order.id)
            if order.id in self._orders or order.id in seen:
                raise DuplicateOrderError("order id already known", order_id=order.id)
            seen.add(order.id)
        for order in batch:
            self._register(order)
            self._book(order.zone, order.epoch_id).rest(order)
            self._order_seq = max(self._order_seq, order.seq)
        self._trade_seq = max(self._trade_seq, last_trade_seq)

    # -- queries ----------------------------------------------------------------------

    def depth(self, zone: str, epoch_id: int, levels: int = 10) -> BookDepth:
        self._zone(zone)
        book = self._books.get((zone, epoch_id))
        return empty_depth(zone, epoch_id) if book is None else book_depth(book, levels)

    def get_order(self, order_id: str) -> Order:
        order = self._orders.get(order_id)
        if order is None:
            raise OrderNotFoundError("no such order", order_id=order_id)
        return order

    def epochs_with_open_orders(self) -> set[int]:
        """The epochs whose books hold an open order: one look per book, not per order."""
        return {epoch_id for (_zone, epoch_id), book in self._books.items() if not book.is_empty()}

    def open_orders(
        self, *, zone: str | None = None, epoch_id: int | None = None, owner: str | None = None
    ) -> list[Order]:
        """Open orders matching every filter given, oldest first."""
        found = [
            order
            for (book_zone, book_epoch), book in self._books.items()
            if (zone is None or book_zone == zone) and (epoch_id is None or book_epoch == epoch_id)
            for order in book.open_orders()
            if order.is_open and (owner is None or order.owner == owner)
        ]
        found.sort(key=lambda o: o.seq)
        return found

    # -- validation -------------------------------------------------------------------

    def _rates(self, epoch_id: int) -> dict[tuple[str, str], ZoneRate]:
        """Every zone pair's rate for trades delivered in ``epoch_id``."""
        start = None
        for candidate in self._rate_starts:
            if candidate > epoch_id:
                break
            start = candidate
        return self._rate_tables[start]

    def _zone(self, zone_id: str) -> Zone:
        zone = self._config.zones.get(zone_id)
        if zone is None:
            raise UnknownZoneError("unknown zone", zone=zone_id)
        return zone

    def _epoch_terms(self, zone: Zone, epoch_id: int) -> _EpochTerms:
        key = (zone.id, epoch_id)
        terms = self._terms.get(key)
        if terms is None:
            epoch = self._config.schedule.epoch(epoch_id)
            band = zone.tariff.band_at(epoch.start.hour)
            low, high = self._config.margins_for(epoch_id).bounds(band.feed_in, band.retail)
            terms = self._terms[key] = _EpochTerms(epoch.gate_closure, low, high)
        return terms

    def _check_new(self, order: Order, now: datetime, *, replacing: Order | None) -> None:
        _require_aware(now)
        zone = self._zone(order.zone)
        if order.qty_wh <= 0:
            raise InvalidQuantityError(
                "quantity must be a positive number of Wh", qty_wh=order.qty_wh
            )
        if order.filled_wh or order.cancelled_wh or order.status is not _OPEN:
            raise InvalidOrderStateError("a new order must be open and unfilled", order_id=order.id)
        if (
            order.kind is not OrderKind.LIMIT
            and self._mechanisms[zone.id] is not Mechanism.CONTINUOUS
        ):
            raise OrderKindNotSupportedError(
                "market orders need a continuous market", kind=order.kind, zone=zone.id
            )
        terms = self._epoch_terms(zone, order.epoch_id)
        if now >= terms.gate_closure or order.epoch_id in self._closed_epochs:
            raise GateClosedError("gate closure has passed", epoch_id=order.epoch_id)
        if not terms.feed_in <= order.limit_price <= terms.retail:
            raise PriceOutOfBoundsError(
                "price must lie between the feed-in and retail tariffs (less the epoch's"
                " governed bound margins)",
                limit_price=order.limit_price,
                feed_in=terms.feed_in,
                retail=terms.retail,
            )
        if order.id in self._orders:
            raise DuplicateOrderError("order id already used", order_id=order.id)
        if order.client_order_id is not None:
            existing = self._client_ids.get((order.owner, order.client_order_id))
            if existing is not None and (replacing is None or existing != replacing.id):
                raise DuplicateClientOrderIdError(
                    "client order id already used",
                    client_order_id=order.client_order_id,
                    order_id=existing,
                )

    def _open_order(self, order_id: str, owner: str | None) -> Order:
        order = self.get_order(order_id)
        if owner is not None and order.owner != owner:
            raise NotOrderOwnerError("order belongs to another owner", order_id=order_id)
        if not order.is_open:
            raise OrderNotOpenError(
                "order is no longer open", order_id=order_id, status=order.status
            )
        return order

    # -- acceptance and matching ----------------------------------------------------

    def _register(self, order: Order) -> None:
        self._orders[order.id] = order
        self._epoch_order_ids.setdefault(order.epoch_id, []).append(order.id)
        if order.client_order_id is not None:
            self._client_ids[(order.owner, order.client_order_id)] = order.id

    def _book(self, zone: str, epoch_id: int) -> ContinuousBook:
        book = self._books.get((zone, epoch_id))
        if book is None:
            book = self._books[(zone, epoch_id)] = ContinuousBook(zone, epoch_id)
            self._epoch_books.setdefault(epoch_id, {})[zone] = book
            if self._config.mechanism(zone) is Mechanism.CONTINUOUS:
                self._continuous_books.setdefault(epoch_id, []).append((zone, book))
        return book

    def _accept(self, order: Order, now: datetime) -> SubmitResult:
        self._order_seq += 1
        order.seq = self._order_seq
        self._register(order)
        book = self._book(order.zone, order.epoch_id)
        if self._mechanisms[order.zone] is not Mechanism.CONTINUOUS:
            book.rest(order)
            return SubmitResult(order, [], [])
        if order.kind is OrderKind.MARKET_FOK and not fully_fillable(
            order, self._sources(order, book), self._links
        ):
            order.cancelled_wh = order.qty_wh
            order.status = OrderStatus.CANCELLED
            return SubmitResult(order, [], [])
        self._links.blocked.clear()
        fills, remaining, self_trade = self._match(order, book)
        limited_by = tuple(sorted(self._links.blocked)) if remaining else ()
        order.filled_wh = order.qty_wh - remaining
        if remaining == 0:
            order.status = OrderStatus.FILLED
        elif self_trade or order.kind is not OrderKind.LIMIT:
            order.cancelled_wh = remaining
            order.status = OrderStatus.CANCELLED
        else:
            order.status = OrderStatus.PARTIALLY_FILLED if order.filled_wh else _OPEN
            book.rest(order)
        if not fills:
            return SubmitResult(order, [], [], limited_by)
        is_buy = order.side is Side.BUY
        trades = [
            self._trade(order, resting, sold, delivered, price, rate, now)
            if is_buy
            else self._trade(resting, order, sold, delivered, price, rate, now)
            for resting, sold, delivered, price, rate in fills
        ]
        return SubmitResult(order, trades, [fill[0] for fill in fills], limited_by)

    def _trade(
        self,
        buy: Order,
        sell: Order,
        sold: int,
        delivered: int,
        price: int,
        rate: ZoneRate,
        now: datetime,
        *,
        congestion_fee: int = 0,
    ) -> Trade:
        self._trade_seq += 1
        return make_trade(
            trade_id=self._new_id(),
            seq=self._trade_seq,
            buy=buy,
            sell=sell,
            sold_wh=sold,
            delivered_wh=delivered,
            price=price,
            rate=rate,
            fee_bps=self._config.fee_for(buy.epoch_id),
            executed_at=now,
            congestion_fee=congestion_fee,
        )

    def _sources(self, order: Order, own: ContinuousBook) -> list[Source]:
        """The books ``order`` may match against, with the rate and price bound toward each."""
        if self._config.cross_zone:
            books = self._continuous_books[order.epoch_id]
        else:
            books = [(order.zone, own)]
        sources = []
        rates = self._rates(order.epoch_id)
        for zone, book in books:
            if order.side is Side.BUY:
                rate = rates[(zone, order.zone)]
                bound = rate.seller_cap(order.limit_price)
            else:
                rate = rates[(order.zone, zone)]
                bound = rate.buy_threshold(order.limit_price)
            sources.append(Source(zone, book, rate, bound))
        return sources

    def _match(self, order: Order, own: ContinuousBook) -> tuple[list[MultiFill], int, bool]:
        if not self._config.cross_zone or len(self._continuous_books[order.epoch_id]) == 1:
            # Only the order's own book: its tight loop, one rate, no capacity links.
            rate = self._rates(order.epoch_id)[(order.zone, order.zone)]
            fills: list[Fill] = []
            if order.side is Side.BUY:
                remaining, stp = own.match_buy(
                    order.owner, order.qty_wh, rate.seller_cap(order.limit_price), rate, fills
                )
            else:
                remaining, stp = own.match_sell(
                    order.owner, order.qty_wh, rate.buy_threshold(order.limit_price), rate, fills
                )
            return [(r, s, d, p, rate) for r, s, d, p in fills], remaining, stp
        sources = self._sources(order, own)
        if order.side is Side.BUY:
            return match_buy_across(order, sources, self._links)
        return match_sell_across(order, sources, self._links)


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValidationError("times must be timezone-aware UTC", now=now.isoformat())
