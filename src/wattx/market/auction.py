"""Uniform-price call auction: where supply meets demand.

Bids and asks are ``(price, qty)`` pairs in the same units (seller-side price
per kWh, Wh sold). At a price ``p`` demand ``D(p)`` is the quantity bid at
``p`` or more and supply ``S(p)`` the quantity asked at ``p`` or less; the
volume that can trade at ``p`` is ``min(D(p), S(p))``.

Clearing rule, over every integer price:

1. maximise the volume;
2. among those prices, minimise the imbalance ``|D(p) - S(p)|``;
3. the remaining prices form an interval ``[lo, hi]``; the clearing price is
   its midpoint rounded down, ``(lo + hi) // 2``.

Both sets are intervals because ``D`` never increases and ``S`` never
decreases with the price. ``D`` and ``S`` only change at ``bid + 1`` and at
``ask``, so evaluating those breakpoints covers every integer price. No
volume (no bid at or above any ask) means no clearing price.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import accumulate

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class AuctionClearing:
    """The outcome of a call auction: price (None if nothing crosses) and volume."""

    price: int | None
    volume: int
    demand: int
    supply: int

    @property
    def imbalance(self) -> int:
        return abs(self.demand - self.supply)


NO_CROSS = AuctionClearing(None, 0, 0, 0)


def clear_call_auction(
    bids: Iterable[tuple[int, int]], asks: Iterable[tuple[int, int]]
) -> AuctionClearing:
    """Clear ``(price, qty)`` bids against asks by the rule in the module docstring."""
    bid_list = sorted(bids)
    ask_list = sorted(asks)
    if not bid_list or not ask_list or bid_list[-1][0] < ask_list[0][0]:
        return NO_CROSS
    bid_prices = [p for p, _ in bid_list]
    ask_prices = [p for p, _ in ask_list]
    bid_below = [0, *accumulate(q for _, q in bid_list)]  # bid_below[i]: qty of bids [0, i)
    ask_upto = [0, *accumulate(q for _, q in ask_list)]
    total_bid = bid_below[-1]
    breakpoints = sorted({p + 1 for p in bid_prices} | set(ask_prices))

    best_key: tuple[int, int] | None = None
    first = last = -1
    for k, x in enumerate(breakpoints[:-1]):
        demand = total_bid - bid_below[bisect_left(bid_prices, x)]
        supply = ask_upto[bisect_right(ask_prices, x)]
        volume = min(demand, supply)
        if volume == 0:
            continue
        key = (-volume, abs(demand - supply))
        if best_key is None or key < best_key:
            best_key, first, last = key, k, k
        elif key == best_key:
            last = k
    if best_key is None:
        return NO_CROSS
    low, high = breakpoints[first], breakpoints[last + 1] - 1
    price = (low + high) // 2
    demand = total_bid - bid_below[bisect_left(bid_prices, price)]
    supply = ask_upto[bisect_right(ask_prices, price)]
    return AuctionClearing(price, min(demand, supply), demand, supply)


IntArray = npt.NDArray[np.int64]


def clear_call_auction_arrays(
    buy_prices: npt.ArrayLike,
    buy_qtys: npt.ArrayLike,
    sell_prices: npt.ArrayLike,
    sell_qtys: npt.ArrayLike,
) -> AuctionClearing:
    """The same rule as :func:`clear_call_auction`, vectorised for large books.

    Inputs are integer arrays (converted to ``int64``); the result is exact.
    """
    bp = np.asarray(buy_prices, dtype=np.int64)
    bq = np.asarray(buy_qtys, dtype=np.int64)
    ap = np.asarray(sell_prices, dtype=np.int64)
    aq = np.asarray(sell_qtys, dtype=np.int64)
    if bp.size == 0 or ap.size == 0:
        return NO_CROSS
    bid_order = np.argsort(bp, kind="stable")
    ask_order = np.argsort(ap, kind="stable")
    bp, bq = bp[bid_order], bq[bid_order]
    ap, aq = ap[ask_order], aq[ask_order]
    if bp[-1] < ap[0]:
        return NO_CROSS
    bid_below = np.concatenate(([0], np.cumsum(bq)))
    ask_upto = np.concatenate(([0], np.cumsum(aq)))
    total_bid = int(bid_below[-1])
    # Both runs are sorted, so a stable sort only merges them. Duplicates are
    # harmless: equal breakpoints evaluate equal and are chosen together.
    breakpoints = np.sort(np.concatenate((bp + 1, ap)), kind="stable")
    demand = total_bid - bid_below[np.searchsorted(bp, breakpoints, side="left")]
    supply = ask_upto[np.searchsorted(ap, breakpoints, side="right")]
    volume = np.minimum(demand, supply)
    best_volume = int(volume.max())
    if best_volume == 0:
        return NO_CROSS
    imbalance = np.abs(demand - supply)
    candidates = volume == best_volume
    best_imbalance = int(imbalance[candidates].min())
    chosen = np.flatnonzero(candidates & (imbalance == best_imbalance))
    first, last = int(chosen[0]), int(chosen[-1])
    low = int(breakpoints[first])
    high = int(breakpoints[np.searchsorted(breakpoints, breakpoints[last], side="right")]) - 1
    price = (low + high) // 2
    demand_at = total_bid - int(bid_below[np.searchsorted(bp, price, side="left")])
    supply_at = int(ask_upto[np.searchsorted(ap, price, side="right")])
    return AuctionClearing(price, min(demand_at, supply_at), demand_at, supply_at)
