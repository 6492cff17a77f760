"""Continuous matching across the books of several zones, by landed cost.

A buyer's limit is a landed price per delivered kWh, so an incoming buy takes
the resting ask with the lowest landed cost ``(price + wheeling) / (1 - loss)``
over every source book, then the oldest; an incoming sell takes the bid that
pays it most in seller terms (:meth:`ZoneRate.seller_cap`), then the higher
bid, then the oldest. Cross-zone matches respect the zones' link capacities
(:class:`ZoneLinks`): with a grid tree every link on the path between the two
zones, Wh sold counted on each; without one, the seller zone's export and the
buyer zone's import. Self-trade prevention is the same as within one book:
the incoming order stops at its owner's own resting order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction

from wattx.domain import Order, Side, Zone
from wattx.grid.model import Direction, GridLink, GridTree
from wattx.market.book import ContinuousBook, PriceLevel
from wattx.market.rates import ZoneRate

UNLIMITED = 1 << 62

MultiFill = tuple[Order, int, int, int, ZoneRate]
"""``(resting order, Wh sold, Wh delivered, seller price, rate)`` of one match."""


@dataclass(slots=True)
class Source:
    """A book an incoming order may match against, with the rate and price bound toward it.

    ``bound`` is, for a buy, the highest ask price it accepts from this book;
    for a sell, the lowest landed bid limit it accepts.
    """

    zone: str
    book: ContinuousBook
    rate: ZoneRate
    bound: int


LinkUse = tuple[str, Direction]
"""A grid link direction, named by the link's child zone."""


class ZoneLinks:
    """Cross-zone energy already scheduled per epoch, against the link capacities.

    Without a grid tree, exports count Wh sold out of a zone and imports Wh
    delivered into it, against the zone's own capacities. With a tree, every
    link on the path carries the Wh sold, against that link's capacity in the
    direction crossed. ``blocked`` collects the link directions (or zones) that
    stopped a match since it was last cleared: the book reports them.
    """

    __slots__ = ("_capacity", "_flows", "_grid", "_link_flows", "_paths", "_zones", "blocked")

    def __init__(
        self,
        zones: Mapping[str, Zone],
        grid: GridTree | None = None,
        capacity: CapacityOf | None = None,
    ) -> None:
        """``capacity(zone, direction, epoch_id, configured)``: the capacity in force for
        that epoch (governed per link), given the configured one; the configured one
        when not given."""
        self._zones = zones
        self._grid = grid
        self._capacity: CapacityOf = capacity or _configured
        self._paths = grid.paths() if grid is not None else {}
        self._flows: dict[tuple[str, int], list[int]] = {}
        self._link_flows: dict[tuple[LinkUse, int], int] = {}
        self.blocked: set[str] = set()

    def copy(self) -> ZoneLinks:
        twin = ZoneLinks.__new__(ZoneLinks)
        twin._zones, twin._grid, twin._paths = self._zones, self._grid, self._paths
        twin._capacity = self._capacity
        twin._flows = {key: list(used) for key, used in self._flows.items()}
        twin._link_flows = dict(self._link_flows)
        twin.blocked = set()
        return twin

    def limit(self, seller_zone: str, buyer_zone: str, epoch_id: int, rate: ZoneRate) -> int:
        """Most Wh that may still be sold from ``seller_zone`` to ``buyer_zone`` this epoch."""
        if seller_zone == buyer_zone:
            return UNLIMITED
        if self._grid is not None:
            return self._path_limit(seller_zone, buyer_zone, epoch_id)
        exported = self._flows.get((seller_zone, epoch_id), (0, 0))[0]
        imported = self._flows.get((buyer_zone, epoch_id), (0, 0))[1]
        export_cap = self._capacity(
            seller_zone, Direction.UP, epoch_id, self._zones[seller_zone].export_capacity_wh
        )
        import_cap = self._capacity(
            buyer_zone, Direction.DOWN, epoch_id, self._zones[buyer_zone].import_capacity_wh
        )
        limit = UNLIMITED if export_cap is None else max(export_cap - exported, 0)
        if limit == 0:
            self.blocked.add(f"{seller_zone}:export")
        if import_cap is not None:
            room = import_cap - imported
            if room <= 0:
                self.blocked.add(f"{buyer_zone}:import")
            limit = min(limit, rate.sold_for(room) if room > 0 else 0)
        return limit

    def _path_limit(self, seller_zone: str, buyer_zone: str, epoch_id: int) -> int:
        limit = UNLIMITED
        for link, direction in self._paths[(seller_zone, buyer_zone)]:
            capacity = self._capacity(link.child, direction, epoch_id, link.capacity(direction))
            if capacity is None:
                continue
            room = max(capacity - self._link_flows.get(((link.child, direction), epoch_id), 0), 0)
            if room == 0:
                self.blocked.add(f"{link.child}-{link.parent}:{direction.value}")
            limit = min(limit, room)
        return limit

    def record(
        self, seller_zone: str, buyer_zone: str, epoch_id: int, sold: int, delivered: int
    ) -> None:
        if seller_zone == buyer_zone:
            return
        self._flows.setdefault((seller_zone, epoch_id), [0, 0])[0] += sold
        self._flows.setdefault((buyer_zone, epoch_id), [0, 0])[1] += delivered
        for link, direction in self._paths.get((seller_zone, buyer_zone), ()):
            key = ((link.child, direction), epoch_id)
            self._link_flows[key] = self._link_flows.get(key, 0) + sold

    def flows(self, zone: str, epoch_id: int) -> tuple[int, int]:
        """``(exported Wh sold, imported Wh delivered)`` of ``zone`` in ``epoch_id``."""
        exported, imported = self._flows.get((zone, epoch_id), (0, 0))
        return exported, imported

    def link_flow(self, child: str, direction: Direction, epoch_id: int) -> int:
        """Wh sold across a grid link direction in ``epoch_id`` (tree markets)."""
        return self._link_flows.get(((child, direction), epoch_id), 0)

    def remaining(self, grid: GridTree, epoch_id: int) -> GridTree:
        """``grid`` with each capacity reduced by what the epoch already moved across it."""

        def left(cap: int | None, child: str, direction: Direction) -> int | None:
            cap = self._capacity(child, direction, epoch_id, cap)
            if cap is None:
                return None
            return max(cap - self.link_flow(child, direction, epoch_id), 0)

        return GridTree(
            grid.zones,
            tuple(
                GridLink(
                    link.child,
                    link.parent,
                    left(link.import_wh, link.child, Direction.DOWN),
                    left(link.export_wh, link.child, Direction.UP),
                )
                for link in grid.links
            ),
        )

    def drop_epoch(self, epoch_id: int) -> None:
        for key in [key for key in self._flows if key[1] == epoch_id]:
            del self._flows[key]
        for link_key in [key for key in self._link_flows if key[1] == epoch_id]:
            del self._link_flows[link_key]


CapacityOf = Callable[[str, Direction, int, "int | None"], "int | None"]
"""(zone, direction, epoch id, configured capacity) → the capacity in force."""


def _configured(_zone: str, _direction: Direction, _epoch_id: int, cap: int | None) -> int | None:
    return cap


def match_buy_across(
    order: Order, sources: list[Source], links: ZoneLinks
) -> tuple[list[MultiFill], int, bool]:
    """Take the cheapest landed ask across zones, then the oldest, until done."""
    fills: list[MultiFill] = []
    wanted = order.qty_wh
    while wanted > 0:
        best: tuple[Source, PriceLevel, Order, int] | None = None
        best_num = best_den = 0
        for source in sources:
            level = source.book.best_ask()
            if level is None or level.price > source.bound:
                continue
            limit = links.limit(source.zone, order.zone, order.epoch_id, source.rate)
            if limit == 0:
                continue
            head = level.head()
            num, den = source.rate.landed(level.price)
            if (
                best is None
                or num * best_den < best_num * den
                or (num * best_den == best_num * den and head.seq < best[2].seq)
            ):
                best, best_num, best_den = (source, level, head, limit), num, den
        if best is None:
            break
        source, level, resting, limit = best
        if resting.owner == order.owner:
            return fills, wanted, True
        sold = min(resting.remaining_wh, source.rate.sold_for(wanted), limit)
        delivered = source.rate.delivered(sold)
        source.book.fill_head(level, resting, sold)
        links.record(source.zone, order.zone, order.epoch_id, sold, delivered)
        wanted -= delivered
        fills.append((resting, sold, delivered, level.price, source.rate))
    return fills, wanted, False


def match_sell_across(
    order: Order, sources: list[Source], links: ZoneLinks
) -> tuple[list[MultiFill], int, bool]:
    """Take the bid paying the seller most across zones, then the higher bid, then the oldest."""
    fills: list[MultiFill] = []
    offered = order.qty_wh
    while offered > 0:
        best: tuple[Source, PriceLevel, Order, int] | None = None
        best_key = (0, 0, 0)
        for source in sources:
            level = source.book.best_bid()
            if level is None or level.price < source.bound:
                continue
            limit = links.limit(order.zone, source.zone, order.epoch_id, source.rate)
            if limit == 0:
                continue
            head = level.head()
            key = (-source.rate.seller_cap(level.price), -level.price, head.seq)
            if best is None or key < best_key:
                best, best_key = (source, level, head, limit), key
        if best is None:
            break
        source, level, resting, limit = best
        if resting.owner == order.owner:
            return fills, offered, True
        sold = min(offered, source.rate.sold_for(resting.remaining_wh), limit)
        delivered = source.rate.delivered(sold)
        source.book.fill_head(level, resting, delivered)
        links.record(order.zone, source.zone, order.epoch_id, sold, delivered)
        offered -= sold
        fills.append((resting, sold, delivered, source.rate.seller_cap(level.price), source.rate))
    return fills, offered, False


def fully_fillable(order: Order, sources: list[Source], links: ZoneLinks) -> bool:
    """Whether matching now would fill all of ``order`` (fill-or-kill), changing nothing.

    Walks the same candidates in the same priority as matching, with the
    same quantities, self-trade stop and capacity links.
    """
    wanted = order.qty_wh
    links = links.copy()
    for resting, source in _candidates(order, sources):
        rate = source.rate
        if order.side is Side.BUY:
            seller, buyer = source.zone, order.zone
        else:
            seller, buyer = order.zone, source.zone
        limit = links.limit(seller, buyer, order.epoch_id, rate)
        if limit == 0:
            continue
        if resting.owner == order.owner:
            return False
        if order.side is Side.BUY:
            sold = min(resting.remaining_wh, rate.sold_for(wanted), limit)
            delivered = rate.delivered(sold)
            wanted -= delivered
        else:
            sold = min(wanted, rate.sold_for(resting.remaining_wh), limit)
            delivered = rate.delivered(sold)
            wanted -= sold
        links.record(seller, buyer, order.epoch_id, sold, delivered)
        if wanted == 0:
            return True
    return False


def _candidates(order: Order, sources: list[Source]) -> Iterator[tuple[Order, Source]]:
    """Every resting order ``order`` could match, in matching priority."""
    ranked: list[tuple[tuple[Fraction | int, ...], Order, Source]] = []
    for source in sources:
        if order.side is Side.BUY:
            for level in source.book.levels(Side.SELL):
                if level.price > source.bound:
                    break
                num, den = source.rate.landed(level.price)
                ranked.extend(((Fraction(num, den), o.seq), o, source) for o in level.live_orders())
        else:
            for level in source.book.levels(Side.BUY):
                if level.price < source.bound:
                    break
                price = source.rate.seller_cap(level.price)
                ranked.extend(
                    ((-price, -level.price, o.seq), o, source) for o in level.live_orders()
                )
    ranked.sort(key=lambda item: item[0])
    return ((o, source) for _, o, source in ranked)
