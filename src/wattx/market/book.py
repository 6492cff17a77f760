"""One continuous order book: a zone's orders for one delivery epoch.

Price levels are keyed by integer price; each holds a FIFO deque of orders
(time priority) and the aggregated open quantity and order count (so depth
snapshots read levels, never orders). The best price of each side sits at the
top of a heap of level prices. Both cancels and empty levels are lazy: a
cancelled order stays in its deque, marked cancelled, until it reaches the
head; an empty level stays in the heap until it reaches the top. That keeps
every event O(log levels) with no search through a queue.

Bid levels are keyed by the buyer's landed limit (per delivered kWh) and hold
delivered Wh; ask levels by the seller's limit and hold Wh sold. The book
itself knows nothing of zones' rates beyond the :class:`ZoneRate` it is given
to match within its own zone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from heapq import heappop, heappush, nlargest, nsmallest

from wattx.domain import Order, OrderStatus, Side
from wattx.market.rates import ZoneRate

_CANCELLED = OrderStatus.CANCELLED
_FILLED = OrderStatus.FILLED
_PARTIALLY_FILLED = OrderStatus.PARTIALLY_FILLED

Fill = tuple[Order, int, int, int]
"""``(resting order, Wh sold, Wh delivered, seller price)`` of one match."""


class PriceLevel:
    """All open orders at one price on one side, oldest first."""

    __slots__ = ("count", "orders", "price", "qty_wh")

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders: deque[Order] = deque()
        self.qty_wh = 0
        self.count = 0

    def head(self) -> Order:
        """The oldest live order; the level must have ``count > 0``."""
        orders = self.orders
        order = orders[0]
        while order.status is _CANCELLED:
            orders.popleft()
            order = orders[0]
        return order

    def live_orders(self) -> Iterator[Order]:
        return (o for o in self.orders if o.status is not _CANCELLED)


class ContinuousBook:
    """Price-time priority book for one (zone, epoch)."""

    __slots__ = ("_ask_heap", "_asks", "_bid_heap", "_bids", "epoch_id", "zone")

    def __init__(self, zone: str, epoch_id: int) -> None:
        self.zone = zone
        self.epoch_id = epoch_id
        self._bids: dict[int, PriceLevel] = {}
        self._asks: dict[int, PriceLevel] = {}
        self._bid_heap: list[int] = []  # negated prices: heapq is a min-heap
        self._ask_heap: list[int] = []

    # -- resting and cancelling -------------------------------------------------

    def rest(self, order: Order) -> None:
        """Append ``order`` (open quantity > 0) at the back of its price level."""
        price = order.limit_price
        if order.side is Side.BUY:
            levels, heap, key = self._bids, self._bid_heap, -price
        else:
            levels, heap, key = self._asks, self._ask_heap, price
        level = levels.get(price)
        if level is None:
            level = levels[price] = PriceLevel(price)
            heappush(heap, key)
        level.orders.append(order)
        level.qty_wh += order.qty_wh - order.filled_wh - order.cancelled_wh
        level.count += 1

    def cancel(self, order: Order) -> int:
        """Cancel a resting order's open quantity (lazily) and return it."""
        levels = self._bids if order.side is Side.BUY else self._asks
        level = levels[order.limit_price]
        remaining = order.qty_wh - order.filled_wh - order.cancelled_wh
        order.cancelled_wh += remaining
        order.status = _CANCELLED
        level.qty_wh -= remaining
        level.count -= 1
        # Bound the memory that lazy cancels hold in a level far from the touch.
        if len(level.orders) > 2 * level.count + 32:
            level.orders = deque(level.live_orders())
        return remaining

    # -- best prices --------------------------------------------------------------

    def best_bid(self) -> PriceLevel | None:
        heap, levels = self._bid_heap, self._bids
        while heap:
            level = levels[-heap[0]]
            if level.count:
                return level
            heappop(heap)
            del levels[level.price]
        return None

    def best_ask(self) -> PriceLevel | None:
        heap, levels = self._ask_heap, self._asks
        while heap:
            level = levels[heap[0]]
            if level.count:
                return level
            heappop(heap)
            del levels[level.price]
        return None

    def best(self, side: Side) -> PriceLevel | None:
        return self.best_bid() if side is Side.BUY else self.best_ask()

    # -- matching -------------------------------------------------------------------

    def fill_head(self, level: PriceLevel, order: Order, qty_wh: int) -> None:
        """Fill ``qty_wh`` (in the order's own units) of ``order``, the head of ``level``."""
        order.filled_wh += qty_wh
        level.qty_wh -= qty_wh
        if order.filled_wh + order.cancelled_wh == order.qty_wh:
            order.status = _FILLED
            level.orders.popleft()
            level.count -= 1
        else:
            order.status = _PARTIALLY_FILLED

    def match_buy(
        self, owner: str, wanted_wh: int, cap: int, rate: ZoneRate, fills: list[Fill]
    ) -> tuple[int, bool]:
        """Take asks priced at most ``cap`` for a buyer wanting ``wanted_wh`` delivered.

        Appends one :data:`Fill` per match and returns the delivered Wh still
        wanted and whether matching stopped because the next ask in priority
        belongs to ``owner`` (self-trade prevention: the caller cancels the
        incoming order's rest).
        """
        lossless = rate.loss_bps == 0
        heap, levels = self._ask_heap, self._asks
        while wanted_wh > 0:
            if not heap:
                break
            level = levels[heap[0]]
            if not level.count:
                heappop(heap)
                del levels[level.price]
                continue
            price = level.price
            if price > cap:
                break
            resting = level.head()
            if resting.owner == owner:
                return wanted_wh, True
            available = resting.qty_wh - resting.filled_wh - resting.cancelled_wh
            if lossless:
                sold = delivered = available if available < wanted_wh else wanted_wh
            else:
                sold = rate.sold_for(wanted_wh)
                if sold > available:
                    sold = available
                delivered = rate.delivered(sold)
            resting.filled_wh += sold
            level.qty_wh -= sold
            if sold == available:
                resting.status = _FILLED
                level.orders.popleft()
                level.count -= 1
            else:
                resting.status = _PARTIALLY_FILLED
            wanted_wh -= delivered
            fills.append((resting, sold, delivered, price))
        return wanted_wh, False

    def match_sell(
        self, owner: str, offered_wh: int, threshold: int, rate: ZoneRate, fills: list[Fill]
    ) -> tuple[int, bool]:
        """Take bids whose landed limit is at least ``threshold`` for a seller of ``offered_wh``.

        The trade price is the resting bid translated to seller terms
        (:meth:`ZoneRate.seller_cap`). Returns the Wh still offered and the
        self-trade flag, like :meth:`match_buy`.
        """
        lossless = rate.loss_bps == 0
        heap, levels = self._bid_heap, self._bids
        while offered_wh > 0:
            if not heap:
                break
            level = levels[-heap[0]]
            if not level.count:
                heappop(heap)
                del levels[level.price]
                continue
            if level.price < threshold:
                break
            price = rate.seller_cap(level.price)
            resting = level.head()
            if resting.owner == owner:
                return offered_wh, True
            wanted = resting.qty_wh - resting.filled_wh - resting.cancelled_wh
            if lossless:
                sold = delivered = wanted if wanted < offered_wh else offered_wh
            else:
                sold = rate.sold_for(wanted)
                if sold > offered_wh:
                    sold = offered_wh
                delivered = rate.delivered(sold)
            resting.filled_wh += delivered
            level.qty_wh -= delivered
            if delivered == wanted:
                resting.status = _FILLED
                level.orders.popleft()
                level.count -= 1
            else:
                resting.status = _PARTIALLY_FILLED
            offered_wh -= sold
            fills.append((resting, sold, delivered, price))
        return offered_wh, False

    # -- reading ----------------------------------------------------------------------

    def levels(self, side: Side) -> list[PriceLevel]:
        """Non-empty levels of ``side``, best first."""
        if side is Side.BUY:
            return [self._bids[p] for p in sorted(self._bids, reverse=True) if self._bids[p].count]
        return [self._asks[p] for p in sorted(self._asks) if self._asks[p].count]

    def top_levels(self, side: Side, n: int) -> list[PriceLevel]:
        """The ``n`` best non-empty levels of ``side``, best first."""
        if side is Side.BUY:
            prices = nlargest(n, (p for p, lvl in self._bids.items() if lvl.count))
            return [self._bids[p] for p in prices]
        prices = nsmallest(n, (p for p, lvl in self._asks.items() if lvl.count))
        return [self._asks[p] for p in prices]

    def open_orders(self) -> Iterator[Order]:
        """Every open order of the book, bids then asks, in priority order."""
        for side in (Side.BUY, Side.SELL):
            for level in self.levels(side):
                yield from level.live_orders()

    def is_empty(self) -> bool:
        return self.best_bid() is None and self.best_ask() is None
