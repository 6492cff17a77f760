"""A zone's call auction at gate closure: clear, select, pair, fill.

Buy limits are landed prices per delivered kWh; the auction works in seller
terms, so each buy enters at :meth:`ZoneRate.seller_cap` of its limit with the
Wh that must be sold to deliver its open quantity. After clearing (see
:mod:`wattx.market.auction`), orders are selected by price priority and, at
the marginal price, by time priority (earlier ``seq`` first; no pro-rata).
Selected buys and sells are paired in that priority order, like a merge.

Self-trade prevention: if the pairing would match an owner with itself, the
newer of the two orders (higher ``seq``) gives way: it leaves the auction
(and expires at gate closure) and the auction is cleared again without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wattx.domain import Order, OrderStatus
from wattx.market.auction import AuctionClearing, clear_call_auction
from wattx.market.mechanism import Mechanism
from wattx.market.rates import ZoneRate


@dataclass(frozen=True, slots=True)
class AuctionMatch:
    """One pair the auction matched: Wh sold, Wh delivered, seller price per kWh."""

    buy: Order
    sell: Order
    sold_wh: int
    delivered_wh: int
    price: int


def run_zone_auction(
    buys: Sequence[Order], sells: Sequence[Order], rate: ZoneRate, pricing: Mechanism
) -> tuple[AuctionClearing, list[AuctionMatch]]:
    """Clear one zone's open orders and apply the fills to them (in place)."""
    active_buys, active_sells = list(buys), list(sells)
    while True:
        clearing = clear_call_auction(
            [(rate.seller_cap(b.limit_price), rate.sold_for(b.remaining_wh)) for b in active_buys],
            [(s.limit_price, s.remaining_wh) for s in active_sells],
        )
        if clearing.price is None:
            return clearing, []
        matches, self_pair = _pair(clearing.price, active_buys, active_sells, rate, pricing)
        if self_pair is None:
            break
        buy, sell = self_pair
        if buy.seq > sell.seq:
            active_buys.remove(buy)
        else:
            active_sells.remove(sell)
    for match in matches:
        _fill(match.sell, match.sold_wh)
        _fill(match.buy, match.delivered_wh)
    return clearing, matches


def _pair(
    price: int, buys: list[Order], sells: list[Order], rate: ZoneRate, pricing: Mechanism
) -> tuple[list[AuctionMatch], tuple[Order, Order] | None]:
    """Pair the orders selected at ``price`` in priority order, without touching them.

    Returns the matches, or the first pair of one owner that stops the pairing.
    """
    chosen_buys = sorted(
        (b for b in buys if rate.seller_cap(b.limit_price) >= price),
        key=lambda b: (-b.limit_price, b.seq),
    )
    chosen_sells = sorted(
        (s for s in sells if s.limit_price <= price), key=lambda s: (s.limit_price, s.seq)
    )
    matches: list[AuctionMatch] = []
    i = j = 0
    wanted = chosen_buys[0].remaining_wh if chosen_buys else 0
    offered = chosen_sells[0].remaining_wh if chosen_sells else 0
    while i < len(chosen_buys) and j < len(chosen_sells):
        buy, sell = chosen_buys[i], chosen_sells[j]
        if buy.owner == sell.owner:
            return [], (buy, sell)
        sold = min(offered, rate.sold_for(wanted))
        delivered = rate.delivered(sold)
        trade_price = (
            price if pricing is Mechanism.CALL_AUCTION else rate.seller_cap(buy.limit_price)
        )
        matches.append(AuctionMatch(buy, sell, sold, delivered, trade_price))
        wanted -= delivered
        offered -= sold
        if wanted == 0:
            i += 1
            wanted = chosen_buys[i].remaining_wh if i < len(chosen_buys) else 0
        if offered == 0:
            j += 1
            offered = chosen_sells[j].remaining_wh if j < len(chosen_sells) else 0
    return matches, None


def _fill(order: Order, qty_wh: int) -> None:
    order.filled_wh += qty_wh
    order.status = OrderStatus.FILLED if order.remaining_wh == 0 else OrderStatus.PARTIALLY_FILLED
