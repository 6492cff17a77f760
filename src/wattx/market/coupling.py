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
stay within the integer capacities); prices and shadow prices are rounded to
the nearest micro-unit per kWh, shadow prices no lower than 0. The orders are
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

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

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


@dataclass(frozen=True, slots=True)
class CoupledMatch:
    """One pair the coupled auction matched; ``congestion_fee`` is paid by the buyer."""

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
        return CoupledClearing(nothing, dict(nothing), [], _reports(tree, paths, [], {}), False)
    uniform = len({rates[pair] for pair in paths}) == 1
    single_pricing = len(set(pricing.values())) == 1
    if (
        fast_path
        and uniform
        and single_pricing
        and not can_bind(tree, active_buys, active_sells, rates)
    ):
        return _pooled(active_buys, active_sells, tree, rates, paths, pricing)
    while True:
        plan = solve_program(active_buys, active_sells, tree, rates, paths, pieces=pieces)
        matches, conflict = _pair(plan, active_buys, active_sells, rates, paths, pricing)
        if conflict is None:
            break
        buy, sell = conflict
        if buy.seq > sell.seq:
            active_buys.remove(buy)
        else:
            active_sells.remove(sell)
    for match in matches:
        _fill(match.sell, match.sold_wh)
        _fill(match.buy, match.delivered_wh)
    reports = _reports(tree, paths, matches, plan.shadow)
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


def _levels(
    orders: Sequence[Order], zone_index: Mapping[str, int]
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Aggregate orders by (zone, price): zone index, price, Wh, as float arrays."""
    if not orders:
        empty = np.zeros(0)
        return empty, empty, empty
    data = np.array(
        [(zone_index[o.zone], o.limit_price, o.remaining_wh) for o in orders], dtype=np.int64
    )
    keys = (data[:, 0] << 40) | data[:, 1]  # prices are far below 2**40 micro-units per kWh
    unique, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=data[:, 2], minlength=len(unique))
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
    zones = sorted(tree.zones)
    index = {zone: i for i, zone in enumerate(zones)}
    nz = len(zones)
    asks = _Curve(*_levels(sells, index), pieces=max(pieces, 2))
    bids = _Curve(*_levels(buys, index), pieces=max(pieces, 2))
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
    present = {o.zone for o in (*buys, *sells)}
    seller_prices: dict[str, int | None] = {}
    buyer_prices: dict[str, int | None] = {}
    for zone, i in index.items():
        known = zone in present
        seller_prices[zone] = round(sigma[i]) if known else None
        buyer_prices[zone] = round(pi[i]) if known else None
    shadow = {key: max(round(-duals[row]), 0) for key, row in link_rows.items()}
    return ProgramSolution(seller_prices, buyer_prices, flows, shadow)


def _pair(
    plan: ProgramSolution,
    buys: Sequence[Order],
    sells: Sequence[Order],
    rates: RateTable,
    paths: Mapping[tuple[str, str], list[Step]],
    pricing: Mapping[str, Mechanism],
) -> tuple[list[CoupledMatch], tuple[Order, Order] | None]:
    """Pair the selected orders flow by flow, without touching them."""
    # Only orders the program can have selected (a price rounded by at most 1) are queued.
    sigma_of, pi_of = plan.seller_prices, plan.buyer_prices
    sells = [s for s in sells if s.limit_price <= (sigma_of[s.zone] or 0) + 1]
    buys = [b for b in buys if b.limit_price >= (pi_of[b.zone] or 0) - 1]
    ask_queues: dict[str, list[Order]] = {}
    for sell in sorted(sells, key=lambda s: (s.limit_price, s.seq)):
        ask_queues.setdefault(sell.zone, []).append(sell)
    bid_queues: dict[str, list[Order]] = {}
    for buy in sorted(buys, key=lambda b: (-b.limit_price, b.seq)):
        bid_queues.setdefault(buy.zone, []).append(buy)
    ask_at = dict.fromkeys(ask_queues, 0)
    bid_at = dict.fromkeys(bid_queues, 0)
    offered = {zone: queue[0].remaining_wh for zone, queue in ask_queues.items()}
    wanted = {zone: queue[0].remaining_wh for zone, queue in bid_queues.items()}
    matches: list[CoupledMatch] = []
    for (seller_zone, buyer_zone), flow in sorted(plan.flows.items()):
        if flow <= 0 or seller_zone not in ask_queues or buyer_zone not in bid_queues:
            continue
        sigma = plan.seller_prices[seller_zone]
        assert sigma is not None
        rate = rates[(seller_zone, buyer_zone)]
        steps = [(link.child, direction) for link, direction in paths[(seller_zone, buyer_zone)]]
        binding = [(key, mu) for key in steps if (mu := plan.shadow.get(key, 0)) > 0]
        rent_price = sum(mu for _, mu in binding)
        pay_as_clear = pricing.get(buyer_zone, Mechanism.CALL_AUCTION) is Mechanism.CALL_AUCTION
        seller_cap, sold_for, delivered_of = rate.seller_cap, rate.sold_for, rate.delivered
        asks, bids = ask_queues[seller_zone], bid_queues[buyer_zone]
        i, j = ask_at[seller_zone], bid_at[buyer_zone]
        off, want = offered[seller_zone], wanted[buyer_zone]
        left = flow
        while left > 0 and i < len(asks) and j < len(bids):
            sell, buy = asks[i], bids[j]
            cap = seller_cap(buy.limit_price) - rent_price
            if sell.limit_price > sigma or cap < sigma:
                break
            if buy.owner == sell.owner:
                return [], (buy, sell)
            sold = min(off, sold_for(want), left)
            delivered = delivered_of(sold)
            if binding:
                link_rents = tuple((key, sold * mu // WH_PER_KWH) for key, mu in binding)
                fee = sum(r for _, r in link_rents)
            else:
                link_rents, fee = (), 0
            matches.append(
                CoupledMatch(
                    buy,
                    sell,
                    sold,
                    delivered,
                    sigma if pay_as_clear else cap,
                    rate,
                    fee,
                    link_rents,
                )
            )
            left -= sold
            off -= sold
            want -= delivered
            if off == 0:
                i += 1
                if i < len(asks):
                    off = asks[i].remaining_wh
            if want == 0:
                j += 1
                if j < len(bids):
                    want = bids[j].remaining_wh
        ask_at[seller_zone], bid_at[buyer_zone] = i, j
        offered[seller_zone], wanted[buyer_zone] = off, want
    return matches, None


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
    return CoupledClearing(sellers, buyers, matches, _reports(tree, paths, matches, {}), False)


def _reports(
    tree: GridTree,
    paths: Mapping[tuple[str, str], list[Step]],
    matches: Sequence[CoupledMatch],
    shadow: Mapping[LinkKey, int],
) -> list[LinkReport]:
    flow: dict[LinkKey, int] = {}
    rent: dict[LinkKey, int] = {}
    for match in matches:
        for link, direction in paths[(match.sell.zone, match.buy.zone)]:
            key = (link.child, direction)
            flow[key] = flow.get(key, 0) + match.sold_wh
        for key, amount in match.link_rents:
            rent[key] = rent.get(key, 0) + amount
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


def _fill(order: Order, qty_wh: int) -> None:
    order.filled_wh += qty_wh
    order.status = OrderStatus.FILLED if order.remaining_wh == 0 else OrderStatus.PARTIALLY_FILLED


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
