"""The coupled call auction: one welfare-maximising clearing over a market's zones.

A linear program, solved with HiGHS, chooses how much of every ask is sold,
how much of every bid is delivered and how much energy flows from each zone to
each other zone, to maximise

    welfare = bid value of the energy delivered
              - ask value of the energy sold - wheeling     (losses: sold > delivered)

subject to every grid link's capacity in each direction. Variables (Wh):
``a`` per ask price level of a zone (``0 <= a <= asked``), ``d`` per bid level
(``0 <= d <= bid``, Wh *delivered*, valued at the landed limit) and ``x[S, B]``
per ordered zone pair (Wh sold in S for buyers in B, ``x >= 0``). Rows:

- supply of zone S: ``sum_B x[S, B] - sum a = 0``; its dual is the zone's
  **seller price** ``sigma_S`` (micro-units per kWh sold);
- demand of zone B: ``sum d - sum_S (1 - L[S, B]) x[S, B] = 0``; its dual is
  the zone's **buyer price** ``pi_B`` (landed, per kWh delivered);
- each link direction with a finite capacity: the sum of ``x[S, B]`` whose tree
  path crosses it ``<= capacity``; its dual is the link's **shadow price** ``mu``.

A link's flow counts Wh *sold* (before losses), a bound on what crosses it.
At the optimum every active pair satisfies
``(1 - L) pi_B = sigma_S + w + sum of mu on its path``: prices are equal where
no limit binds (with lossless, free wheeling) and apart across a binding link.
The program is feasible (all zero) and bounded (every variable is bounded by
the orders) by construction.

**Integers at the boundary.** Pair flows are rounded down to the Wh (so they
stay within the integer capacities); seller and shadow prices are rounded down
to the micro-unit per kWh (shadow prices no lower than 0), buyer prices to the
nearest: a pair's price then never rounds above the marginal buyer's limit. The orders are
then paired pair by pair: sells of S in price-time priority with ask
``<= sigma_S``, buys of B in price-time priority whose limit in seller terms
for that pair covers ``sigma_S + r`` (``r`` = the path's summed shadow prices).
Each match sells ``min(offered, sold_for(wanted), flow left)`` Wh; delivery
rounds the loss down as everywhere else. Rounding can leave a marginal order
out; it never breaks a limit or a capacity.

**Money.** A match trades at the seller zone's price (``call_auction``) or at
the buyer's limit in seller terms less ``r`` (``pay_as_bid``). The buyer also
pays the **congestion fee**, the sum over the path's links of
``sold * mu // 1000``; each link's term is that link's congestion rent, which
goes to the grid account. So buyer payments = seller receipts + fees +
wheeling + rent, to the micro-unit.

**Fast path.** When every zone pair has the same rate and no link can bind
(each direction's capacity covers all the Wh that could cross it), location
does not matter: the orders are pooled and cleared by the single-zone auction
(:func:`wattx.market.gate_auction.run_zone_auction`).

**Self-trade prevention** is the single-zone auction's: when pairing meets one
owner on both sides, the newer order leaves and the auction is solved again.
"""

from __future__ import annotations

import gc
import math
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from operator import attrgetter
from typing import NamedTuple

import highspy
import numpy as np
import numpy.typing as npt

from wattx.domain import Order, OrderStatus
from wattx.grid.model import Direction, GridTree, Step, UnknownGridZoneError
from wattx.market.gate_auction import run_zone_auction
from wattx.market.mechanism import Mechanism
from wattx.market.rates import ZoneRate
from wattx.units import BPS_PER_UNIT, WH_PER_KWH

_EPS = 1e-6


def _silence_banner() -> None:
    """Create the process's first solver with stdout closed: HiGHS prints a banner (from
    C++, to file descriptor 1) the first time, which would break JSON output and logs.
    Done once, at import, before any server thread runs."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        highspy.Highs()  # type: ignore[no-untyped-call]
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


_silence_banner()

PIECES = 16
"""How many segments a zone's side (or a misplaced segment) is cut into."""

LinkKey = tuple[str, Direction]
"""A link direction, named by the link's child zone."""


@dataclass(frozen=True, slots=True)
class LinkReport:
    """One link direction after a clearing: flow, capacity, shadow price and rent."""

    child: str
    parent: str
    direction: Direction
    flow_wh: int
    capacity_wh: int | None
    shadow_price: int
    rent: int

    @property
    def binding(self) -> bool:
        return self.shadow_price > 0


class CoupledMatch(NamedTuple):
    """One pair the coupled auction matched; ``congestion_fee`` is paid by the buyer.

    A named tuple: a clearing makes one per match (hundreds of thousands in a
    large market), and a tuple is several times cheaper to make than a frozen
    dataclass.
    """

    buy: Order
    sell: Order
    sold_wh: int
    delivered_wh: int
    price: int
    rate: ZoneRate
    congestion_fee: int
    link_rents: tuple[tuple[LinkKey, int], ...] = ()


@dataclass(frozen=True)
class CoupledClearing:
    """Zone prices, the matches (fills already applied) and the congestion report."""

    seller_prices: dict[str, int | None]
    buyer_prices: dict[str, int | None]
    matches: list[CoupledMatch]
    links: list[LinkReport]
    solved: bool
    """True when the linear program ran; False on the single-auction fast path."""
    rent: int = field(default=0)


RateTable = Mapping[tuple[str, str], ZoneRate]


def can_bind(
    tree: GridTree, buys: Sequence[Order], sells: Sequence[Order], rates: RateTable
) -> bool:
    """Whether any link direction's capacity is below the Wh that could cross it."""
    asked: dict[str, int] = {}
    for sell in sells:
        asked[sell.zone] = asked.get(sell.zone, 0) + sell.remaining_wh
    wanted: dict[str, int] = {}
    for buy in buys:
        most = max(rates[(zone, buy.zone)].sold_for(buy.remaining_wh) for zone in tree.zones)
        wanted[buy.zone] = wanted.get(buy.zone, 0) + most
    below = tree.subtrees()
    total_asked, total_wanted = sum(asked.values()), sum(wanted.values())
    for link in tree.links:
        inside = below[link.child]
        ask_in = sum(asked.get(z, 0) for z in inside)
        want_in = sum(wanted.get(z, 0) for z in inside)
        up = min(ask_in, total_wanted - want_in)
        down = min(total_asked - ask_in, want_in)
        if link.export_wh is not None and link.export_wh < up:
            return True
        if link.import_wh is not None and link.import_wh < down:
            return True
    return False


def run_coupled_auction(
    buys: Sequence[Order],
    sells: Sequence[Order],
    tree: GridTree,
    rates: RateTable,
    pricing: Mechanism | Mapping[str, Mechanism] = Mechanism.CALL_AUCTION,
    *,
    fast_path: bool = True,
    pieces: int = PIECES,
) -> CoupledClearing:
    """Clear every zone of ``tree`` at once and apply the fills to the orders (in place).

    ``pricing`` is one mechanism, or one per zone (a match is priced by its
    buyer's zone). ``pieces`` tunes how coarsely the program starts
    (:func:`solve_program`); the result is optimal whatever it is.
    """
    if isinstance(pricing, Mechanism):
        pricing = dict.fromkeys(tree.zones, pricing)
    for order in (*buys, *sells):
        if order.zone not in tree.zones:
            raise UnknownGridZoneError("an order's zone is not in the grid", zone=order.zone)
    active_buys, active_sells = list(buys), list(sells)
    paths = tree.paths()
    if not active_buys or not active_sells:
        # Nothing can trade: no program to solve, no price, no flow.
        nothing = dict.fromkeys(sorted(tree.zones))
        return CoupledClearing(nothing, dict(nothing), [], _reports(tree, {}, {}, {}), False)
    uniform = len({rates[pair] for pair in paths}) == 1
    single_pricing = len(set(pricing.values())) == 1
    if (
        fast_path
        and uniform
        and single_pricing
        and not can_bind(tree, active_buys, active_sells, rates)
    ):
        return _pooled(active_buys, active_sells, tree, rates, paths, pricing)
    index = {zone: i for i, zone in enumerate(sorted(tree.zones))}
    bid_side, ask_side = _Orders(active_buys, index), _Orders(active_sells, index)
    while True:
        plan = _solve(bid_side, ask_side, tree, rates, paths, pieces)
        with _cycle_collector_paused():
            paired, conflict = _pair(plan, bid_side, ask_side, rates, paths, pricing)
        matches = paired.matches
        if conflict is None:
            break
        buy, sell = conflict
        if buy.seq > sell.seq:
            active_buys.remove(buy)
            bid_side = _Orders(active_buys, index)
        else:
            active_sells.remove(sell)
            ask_side = _Orders(active_sells, index)
    _fill_all(bid_side, ask_side, matches, paired)
    reports = _reports(tree, paired.flow, paired.rent, plan.shadow)
    return CoupledClearing(
        plan.seller_prices,
        plan.buyer_prices,
        matches,
        reports,
        True,
        sum(r.rent for r in reports),
    )


@dataclass(frozen=True)
class ProgramSolution:
    seller_prices: dict[str, int | None]
    buyer_prices: dict[str, int | None]
    flows: dict[tuple[str, str], int]
    shadow: dict[LinkKey, int]


FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.int32]


IntArray = npt.NDArray[np.int64]


class _Orders:
    """One side's orders as integer arrays (zone index, limit, Wh remaining, seq) and owners."""

    def __init__(self, orders: Sequence[Order], zone_index: Mapping[str, int]) -> None:
        self.orders = list(orders)
        count = len(self.orders)
        fields = attrgetter("limit_price", "qty_wh", "filled_wh", "cancelled_wh", "seq")
        data = np.array(list(map(fields, self.orders)), dtype=np.int64).reshape(-1, 5)
        zones = map(zone_index.__getitem__, map(attrgetter("zone"), self.orders))
        self.zone: IntArray = np.fromiter(zones, dtype=np.int64, count=count)
        self.price: IntArray = data[:, 0]
        self.qty: IntArray = data[:, 1] - data[:, 2] - data[:, 3]
        self.seq: IntArray = data[:, 4]
        self.owner: list[str] = list(map(attrgetter("owner"), self.orders))


def _levels(side: _Orders) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Aggregate orders by (zone, price): zone index, price, Wh, as float arrays."""
    if not len(side.orders):
        empty = np.zeros(0)
        return empty, empty, empty
    keys = (side.zone << 40) | side.price  # prices are far below 2**40 micro-units per kWh
    unique, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=side.qty, minlength=len(unique))
    return (
        (unique >> 40).astype(np.float64),
        (unique & ((1 << 40) - 1)).astype(np.float64),
        sums.astype(np.float64),
    )


class _Curve:
    """One side's price levels (sorted by zone, then price) cut into segments.

    A segment is a run of consecutive levels of one zone that enters the
    program as one column: its Wh summed, its price their Wh-weighted mean.
    That is exact when the segment ends at a bound (all of it, or none) on the
    side of the zone's price where every one of its levels would sit on its
    own; otherwise it is cut finer (see :func:`solve_program`).
    """

    def __init__(self, zone: FloatArray, price: FloatArray, qty: FloatArray, pieces: int) -> None:
        self.zone, self.price, self.qty, self.pieces = zone, price, qty, pieces
        self.cum_qty = np.concatenate(([0.0], np.cumsum(qty)))
        self.cum_value = np.concatenate(([0.0], np.cumsum(qty * price)))
        starts: list[int] = []
        ends: list[int] = []
        if len(zone):
            bounds = np.flatnonzero(np.diff(zone)) + 1
            for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), len(zone)], strict=True):
                cut = self.cut(lo, hi)
                starts.extend(cut[:-1])
                ends.extend(cut[1:])
        self.start = np.asarray(starts, dtype=np.int64)
        self.end = np.asarray(ends, dtype=np.int64)

    def cut(self, lo: int, hi: int) -> list[int]:
        pieces = max(min(self.pieces, hi - lo), 1)
        return sorted({int(v) for v in np.linspace(lo, hi, pieces + 1).round()})

    def columns(self) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Each segment's zone, mean price and Wh."""
        qty = self.cum_qty[self.end] - self.cum_qty[self.start]
        value = self.cum_value[self.end] - self.cum_value[self.start]
        return self.zone[self.start], value / qty, qty

    def refine(self, wrong: npt.NDArray[np.bool_]) -> None:
        starts: list[int] = []
        ends: list[int] = []
        for lo, hi, bad in zip(self.start.tolist(), self.end.tolist(), wrong.tolist(), strict=True):
            if bad:
                cut = self.cut(lo, hi)
                starts.extend(cut[:-1])
                ends.extend(cut[1:])
            else:
                starts.append(lo)
                ends.append(hi)
        self.start = np.asarray(starts, dtype=np.int64)
        self.end = np.asarray(ends, dtype=np.int64)

    def misplaced(
        self, used: FloatArray, prices: FloatArray, *, ask: bool
    ) -> npt.NDArray[np.bool_]:
        """Segments whose levels would not all sit at the segment's bound on their own.

        An ask level belongs fully sold if its price is at most the zone's seller
        price and unsold if at least; a bid level (landed limit) fully delivered
        if at least the buyer price and not at all if at most.
        """
        qty = self.cum_qty[self.end] - self.cum_qty[self.start]
        zone_price = prices[self.zone[self.start].astype(np.int64)]
        low, high = self.price[self.start], self.price[self.end - 1]
        tol = _EPS * np.maximum(1.0, qty)
        empty, full = used <= tol, used >= qty - tol
        slack = _EPS * np.maximum(1.0, np.abs(zone_price))
        if ask:
            ok = (empty & (low >= zone_price - slack)) | (full & (high <= zone_price + slack))
        else:
            ok = (empty & (high <= zone_price + slack)) | (full & (low >= zone_price - slack))
        wrong: npt.NDArray[np.bool_] = ~ok & (self.end - self.start > 1)
        return wrong


def solve_program(
    buys: Sequence[Order],
    sells: Sequence[Order],
    tree: GridTree,
    rates: RateTable,
    paths: Mapping[tuple[str, str], list[Step]],
    *,
    pieces: int = PIECES,
) -> ProgramSolution:
    """Solve the coupled program: zone prices, pair flows (Wh sold), link shadow prices.

    The orders enter as price levels (equal zone and price summed). To keep the
    program small, each zone's asks and bids start as a few segments of
    consecutive levels (:class:`_Curve`); after each solve, a segment that is
    neither wholly used nor wholly unused on the right side of its zone's price
    is cut finer, and the program is solved again. When no segment is
    misplaced, the solution with its duals satisfies the optimality conditions
    of the program with one column per level: it is that program's optimum.
    """
    index = {zone: i for i, zone in enumerate(sorted(tree.zones))}
    return _solve(_Orders(buys, index), _Orders(sells, index), tree, rates, paths, pieces)


def _solve(
    buys: _Orders,
    sells: _Orders,
    tree: GridTree,
    rates: RateTable,
    paths: Mapping[tuple[str, str], list[Step]],
    pieces: int,
) -> ProgramSolution:
    zones = sorted(tree.zones)
    index = {zone: i for i, zone in enumerate(zones)}
    nz = len(zones)
    asks = _Curve(*_levels(sells), pieces=max(pieces, 2))
    bids = _Curve(*_levels(buys), pieces=max(pieces, 2))
    link_rows: dict[LinkKey, int] = {}
    for link in tree.links:
        for direction in (Direction.UP, Direction.DOWN):
            if link.capacity(direction) is not None:
                link_rows[(link.child, direction)] = 2 * nz + len(link_rows)
    num_rows = 2 * nz + len(link_rows)
    pairs = [(s, b) for s in zones for b in zones]
    pair_index: list[int] = []
    pair_value: list[float] = []
    pair_count: list[int] = []
    pair_cost: list[float] = []
    for seller, buyer in pairs:
        rate = rates[(seller, buyer)]
        entries = [(index[seller], 1.0), (nz + index[buyer], -(1 - rate.loss_bps / BPS_PER_UNIT))]
        for link, direction in paths[(seller, buyer)]:
            row = link_rows.get((link.child, direction))
            if row is not None:
                entries.append((row, 1.0))
        pair_index.extend(row for row, _ in entries)
        pair_value.extend(value for _, value in entries)
        pair_count.append(len(entries))
        pair_cost.append(float(rate.wheeling_per_kwh))
    row_upper = np.zeros(num_rows)
    for (child, direction), row in link_rows.items():
        capacity = tree.link(child).capacity(direction)
        row_upper[row] = float(capacity if capacity is not None else 0)
    row_lower = np.zeros(num_rows)
    row_lower[2 * nz :] = -highspy.kHighsInf
    while True:
        ask_zone, ask_price, ask_qty = asks.columns()
        bid_zone, bid_price, bid_qty = bids.columns()
        n_ask, n_bid = len(ask_qty), len(bid_qty)
        counts = np.concatenate(
            (np.ones(n_ask + n_bid, dtype=np.int64), np.asarray(pair_count, dtype=np.int64))
        )
        lp = highspy.HighsLp()
        lp.num_col_ = n_ask + n_bid + len(pairs)
        lp.num_row_ = num_rows
        lp.col_cost_ = np.concatenate((ask_price, -bid_price, np.asarray(pair_cost)))
        lp.col_lower_ = np.zeros(lp.num_col_)
        lp.col_upper_ = np.concatenate((ask_qty, bid_qty, np.full(len(pairs), highspy.kHighsInf)))
        lp.row_lower_ = row_lower
        lp.row_upper_ = row_upper
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.concatenate(([0], np.cumsum(counts))).astype(np.int32)
        lp.a_matrix_.index_ = np.concatenate(
            (ask_zone, nz + bid_zone, np.asarray(pair_index, dtype=np.float64))
        ).astype(np.int32)
        lp.a_matrix_.value_ = np.concatenate(
            (-np.ones(n_ask), np.ones(n_bid), np.asarray(pair_value, dtype=np.float64))
        )
        solver = highspy.Highs()  # type: ignore[no-untyped-call]
        solver.setOptionValue("output_flag", False)
        solver.passModel(lp)
        solver.run()
        status = solver.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:  # pragma: no cover - by construction
            raise RuntimeError(
                f"coupled auction program not optimal: {solver.modelStatusToString(status)}"
            )
        solution = solver.getSolution()
        values = np.asarray(solution.col_value)
        duals = np.asarray(solution.row_dual)
        sigma, pi = -duals[:nz], -duals[nz : 2 * nz]
        wrong_asks = asks.misplaced(values[:n_ask], sigma, ask=True)
        wrong_bids = bids.misplaced(values[n_ask : n_ask + n_bid], pi, ask=False)
        if not wrong_asks.any() and not wrong_bids.any():
            break
        asks.refine(wrong_asks)
        bids.refine(wrong_bids)
    flows = {pair: int(np.floor(values[n_ask + n_bid + k] + _EPS)) for k, pair in enumerate(pairs)}
    present = {zones[i] for i in np.unique(np.concatenate((buys.zone, sells.zone))).tolist()}
    seller_prices: dict[str, int | None] = {}
    buyer_prices: dict[str, int | None] = {}
    for zone, i in index.items():
        known = zone in present
        seller_prices[zone] = _down(sigma[i]) if known else None
        buyer_prices[zone] = round(pi[i]) if known else None
    shadow = {key: max(_down(-duals[row]), 0) for key, row in link_rows.items()}
    return ProgramSolution(seller_prices, buyer_prices, flows, shadow)


@dataclass(frozen=True)
class _Paired:
    """The matches, and per match the positions of its orders and its Wh."""

    matches: list[CoupledMatch]
    bid_pos: IntArray
    ask_pos: IntArray
    sold: IntArray
    delivered: IntArray
    flow: dict[LinkKey, int]
    """Wh sold across each link direction."""
    rent: dict[LinkKey, int]
    """Congestion rent collected on each link direction."""

    @classmethod
    def none(cls) -> _Paired:
        empty = np.zeros(0, dtype=np.int64)
        return cls([], empty, empty, empty, empty, {}, {})


class _Chunk(NamedTuple):
    """The matches of one zone pair: ``first:end`` of the match lists, and their terms."""

    first: int
    end: int
    steps: list[LinkKey]
    rate: ZoneRate
    pay_as_clear: bool
    sigma: int
    binding: list[LinkKey]
    mus: list[int]


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector while the match records are made.

    A large clearing makes hundreds of thousands of tuples while as many orders
    are alive, and each of the collector's passes would walk them all; the
    records hold no cycles, so reference counting frees everything as usual.
    The collector's previous state is restored.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_new_match = partial(tuple.__new__, CoupledMatch)
"""Make a :class:`CoupledMatch` from a tuple of its fields without a Python-level call."""


def _queues(
    side: _Orders, prices: Mapping[str, int | None], zones: Sequence[str], *, ask: bool
) -> tuple[IntArray, IntArray]:
    """The orders the program can have selected (a price rounded by at most 1), in
    price-time priority per zone: their positions in ``side`` and each zone's start."""
    price_of = np.array([prices[z] or 0 for z in zones], dtype=np.int64)
    if ask:
        keep = np.flatnonzero(side.price <= price_of[side.zone] + 1)
        order = np.lexsort((side.seq[keep], side.price[keep], side.zone[keep]))
    else:
        keep = np.flatnonzero(side.price >= price_of[side.zone] - 1)
        order = np.lexsort((side.seq[keep], -side.price[keep], side.zone[keep]))
    queue = keep[order]
    starts = np.searchsorted(side.zone[queue], np.arange(len(zones) + 1))
    return queue, starts


def _down(value: float) -> int:
    """Round down to an integer, forgiving the solver's float noise below one.

    Seller and shadow prices are rounded down so that a pair's price, seller
    price plus the shadow prices on its path, never rounds above what the
    marginal buyer's limit allows: rounding to the nearest could push it one or
    two micro-units over and leave that buyer, and the pair's whole flow, out.
    """
    return math.floor(value + _EPS)


def _pair(
    plan: ProgramSolution,
    buys: _Orders,
    sells: _Orders,
    rates: RateTable,
    paths: Mapping[tuple[str, str], list[Step]],
    pricing: Mapping[str, Mechanism],
) -> tuple[_Paired, tuple[Order, Order] | None]:
    """Pair the selected orders flow by flow, without touching them.

    Queues, eligibility cut-offs, fees and rents are computed on arrays; the
    walk along the two queues stays a loop of plain integers, because each
    match rounds its loss down on its own, so where a bid's delivery ends
    depends on how the asks before it were cut.
    """
    zones = sorted(plan.seller_prices)
    index = {zone: i for i, zone in enumerate(zones)}
    ask_queue, ask_start = _queues(sells, plan.seller_prices, zones, ask=True)
    bid_queue, bid_start = _queues(buys, plan.buyer_prices, zones, ask=False)
    ask_price_arr = sells.price[ask_queue]
    bid_price_arr = buys.price[bid_queue]
    ask_qty, bid_qty = sells.qty[ask_queue].tolist(), buys.qty[bid_queue].tolist()
    ask_owner = list(map(sells.owner.__getitem__, ask_queue.tolist()))
    bid_owner = list(map(buys.owner.__getitem__, bid_queue.tolist()))
    ask_at, bid_at = ask_start[:-1].tolist(), bid_start[:-1].tolist()
    ask_stop, bid_stop = ask_start[1:].tolist(), bid_start[1:].tolist()
    offered = [ask_qty[k] if k < len(ask_qty) else 0 for k in ask_at]
    wanted = [bid_qty[k] if k < len(bid_qty) else 0 for k in bid_at]
    out_ask: list[int] = []
    out_bid: list[int] = []
    out_sold: list[int] = []
    out_delivered: list[int] = []
    chunks: list[_Chunk] = []
    for (seller_zone, buyer_zone), flow in sorted(plan.flows.items()):
        s, b = index[seller_zone], index[buyer_zone]
        i, j = ask_at[s], bid_at[b]
        a_end, b_end = ask_stop[s], bid_stop[b]
        if flow <= 0 or i >= a_end or j >= b_end:
            continue
        sigma = plan.seller_prices[seller_zone]
        assert sigma is not None
        rate = rates[(seller_zone, buyer_zone)]
        steps = [(link.child, direction) for link, direction in paths[(seller_zone, buyer_zone)]]
        binding = [key for key in steps if plan.shadow.get(key, 0) > 0]
        mus = [plan.shadow[key] for key in binding]
        rent_price = sum(mus)
        loss, keep = rate.loss_bps, BPS_PER_UNIT - rate.loss_bps
        # Asks with limit <= sigma and bids whose cap in seller terms covers sigma + rent:
        # a prefix of each queue (from its start), as the queues are in price order.
        a_ok = int(np.searchsorted(ask_price_arr[i:a_end], sigma, side="right")) + i
        caps = bid_price_arr[j:b_end] * keep // BPS_PER_UNIT - rate.wheeling_per_kwh - rent_price
        b_ok = int(np.count_nonzero(caps >= sigma)) + j
        pay_as_clear = pricing.get(buyer_zone, Mechanism.CALL_AUCTION) is Mechanism.CALL_AUCTION
        first = len(out_sold)
        off, want = offered[s], wanted[b]
        left = flow
        while left > 0 and i < a_ok and j < b_ok:
            if ask_owner[i] == bid_owner[j]:
                return _Paired.none(), (buys.orders[bid_queue[j]], sells.orders[ask_queue[i]])
            sold = (want - 1) * BPS_PER_UNIT // keep + 1
            if off < sold:
                sold = off
            if left < sold:
                sold = left
            delivered = sold - sold * loss // BPS_PER_UNIT
            out_ask.append(i)
            out_bid.append(j)
            out_sold.append(sold)
            out_delivered.append(delivered)
            left -= sold
            off -= sold
            want -= delivered
            if off == 0:
                i += 1
                if i < len(ask_qty):
                    off = ask_qty[i]
            if want == 0:
                j += 1
                if j < len(bid_qty):
                    want = bid_qty[j]
        ask_at[s], bid_at[b] = i, j
        offered[s], wanted[b] = off, want
        if len(out_sold) > first:
            chunks.append(
                _Chunk(first, len(out_sold), steps, rate, pay_as_clear, sigma, binding, mus)
            )
    return _matches(
        buys, sells, bid_queue, ask_queue, out_bid, out_ask, out_sold, out_delivered, chunks
    ), None


def _matches(
    buys: _Orders,
    sells: _Orders,
    bid_queue: IntArray,
    ask_queue: IntArray,
    out_bid: list[int],
    out_ask: list[int],
    out_sold: list[int],
    out_delivered: list[int],
    chunks: list[_Chunk],
) -> _Paired:
    """Make the match records; prices, fees and rents per pair on arrays."""
    if not out_sold:
        return _Paired.none()
    sold = np.asarray(out_sold, dtype=np.int64)
    bid_pos = bid_queue[np.asarray(out_bid, dtype=np.int64)]
    ask_pos = ask_queue[np.asarray(out_ask, dtype=np.int64)]
    buy_orders = list(map(buys.orders.__getitem__, bid_pos.tolist()))
    sell_orders = list(map(sells.orders.__getitem__, ask_pos.tolist()))
    matches: list[CoupledMatch] = []
    flow: dict[LinkKey, int] = {}
    rent: dict[LinkKey, int] = {}
    for first, end, steps, rate, pay_as_clear, sigma, binding, mus in chunks:
        count = end - first
        piece = sold[first:end]
        total = int(piece.sum())
        for key in steps:
            flow[key] = flow.get(key, 0) + total
        if pay_as_clear:
            prices: list[int] = [sigma] * count
        else:  # pay-as-bid: the buyer's limit in seller terms, less the path's rent price
            limits = buys.price[bid_pos[first:end]]
            keep = BPS_PER_UNIT - rate.loss_bps
            capped = limits * keep // BPS_PER_UNIT - rate.wheeling_per_kwh - sum(mus)
            prices = capped.tolist()
        if binding:
            rents = [piece * mu // WH_PER_KWH for mu in mus]
            for key, amounts in zip(binding, rents, strict=True):
                rent[key] = rent.get(key, 0) + int(amounts.sum())
            fees = np.sum(rents, axis=0).tolist()
            # Per match, one (link, rent) pair per binding link, built by C iterators.
            link_rents = list(
                zip(
                    *(zip(repeat(key), r.tolist()) for key, r in zip(binding, rents, strict=True)),
                    strict=True,
                )
            )
        else:
            fees = [0] * count
            link_rents = [()] * count
        matches.extend(
            map(
                _new_match,
                zip(
                    buy_orders[first:end],
                    sell_orders[first:end],
                    out_sold[first:end],
                    out_delivered[first:end],
                    prices,
                    repeat(rate, count),
                    fees,
                    link_rents,
                    strict=True,
                ),
            )
        )
    delivered = np.asarray(out_delivered, dtype=np.int64)
    return _Paired(matches, bid_pos, ask_pos, sold, delivered, flow, rent)


def _pooled(
    buys: list[Order],
    sells: list[Order],
    tree: GridTree,
    rates: RateTable,
    paths: Mapping[tuple[str, str], list[Step]],
    pricing: Mapping[str, Mechanism],
) -> CoupledClearing:
    rate = next(iter(rates[pair] for pair in paths))
    mechanism = next(iter(pricing.values()), Mechanism.CALL_AUCTION)
    clearing, zone_matches = run_zone_auction(buys, sells, rate, mechanism)
    matches = [
        CoupledMatch(m.buy, m.sell, m.sold_wh, m.delivered_wh, m.price, rate, 0)
        for m in zone_matches
    ]
    price = clearing.price
    present = {o.zone for o in (*buys, *sells)}
    sellers = {z: price if z in present else None for z in sorted(tree.zones)}
    landed = None if price is None else rate.buy_threshold(price)
    buyers = {z: landed if z in present else None for z in sorted(tree.zones)}
    return CoupledClearing(
        sellers, buyers, matches, _reports(tree, *_totals(paths, matches), {}), False
    )


def _totals(
    paths: Mapping[tuple[str, str], list[Step]], matches: Sequence[CoupledMatch]
) -> tuple[dict[LinkKey, int], dict[LinkKey, int]]:
    """Wh sold and rent per link direction, summed over matches."""
    flow: dict[LinkKey, int] = {}
    rent: dict[LinkKey, int] = {}
    for match in matches:
        for link, direction in paths[(match.sell.zone, match.buy.zone)]:
            key = (link.child, direction)
            flow[key] = flow.get(key, 0) + match.sold_wh
        for key, amount in match.link_rents:
            rent[key] = rent.get(key, 0) + amount
    return flow, rent


def _reports(
    tree: GridTree,
    flow: Mapping[LinkKey, int],
    rent: Mapping[LinkKey, int],
    shadow: Mapping[LinkKey, int],
) -> list[LinkReport]:
    reports = []
    for link in tree.links:
        for direction in (Direction.UP, Direction.DOWN):
            key = (link.child, direction)
            reports.append(
                LinkReport(
                    link.child,
                    link.parent,
                    direction,
                    flow.get(key, 0),
                    link.capacity(direction),
                    shadow.get(key, 0),
                    rent.get(key, 0),
                )
            )
    return reports


def _fill_all(
    buys: _Orders, sells: _Orders, matches: Sequence[CoupledMatch], paired: _Paired
) -> None:
    """Apply the fills: each order's Wh summed on arrays, then the order updated once."""
    for side, positions, amounts in (
        (buys, paired.bid_pos, paired.delivered),
        (sells, paired.ask_pos, paired.sold),
    ):
        total = np.zeros(len(side.orders), dtype=np.int64)
        np.add.at(total, positions, amounts)
        touched = np.flatnonzero(total)
        for k, qty in zip(touched.tolist(), total[touched].tolist(), strict=True):
            order = side.orders[k]
            order.filled_wh += qty
            order.status = (
                OrderStatus.FILLED if order.remaining_wh == 0 else OrderStatus.PARTIALLY_FILLED
            )


def welfare(matches: Sequence[CoupledMatch]) -> int:
    """Welfare of the matches, times 1000 (exact): bid value delivered - ask value - wheeling."""
    return sum(
        m.delivered_wh * m.buy.limit_price
        - m.sold_wh * m.sell.limit_price
        - m.sold_wh * m.rate.wheeling_per_kwh
        for m in matches
    )


__all__ = [
    "CoupledClearing",
    "CoupledMatch",
    "LinkReport",
    "can_bind",
    "run_coupled_auction",
    "welfare",
]
