"""Depth snapshots: a book's best price levels, aggregated."""

from __future__ import annotations

from dataclasses import dataclass

from wattx.domain import Side
from wattx.market.book import ContinuousBook


@dataclass(frozen=True, slots=True)
class DepthLevel:
    """One price level: its price, open quantity (Wh) and number of orders.

    Bid quantities are Wh to be delivered to buyers, ask quantities Wh offered
    by sellers; bid prices are landed limits, ask prices seller limits.
    """

    price: int
    qty_wh: int
    orders: int


@dataclass(frozen=True, slots=True)
class BookDepth:
    """The ``levels`` best bids and asks of one zone and epoch, best first."""

    zone: str
    epoch_id: int
    bids: list[DepthLevel]
    asks: list[DepthLevel]


def book_depth(book: ContinuousBook, levels: int) -> BookDepth:
    """Snapshot ``book``: reads aggregated levels only, never individual orders."""
    return BookDepth(
        zone=book.zone,
        epoch_id=book.epoch_id,
        bids=[
            DepthLevel(lv.price, lv.qty_wh, lv.count) for lv in book.top_levels(Side.BUY, levels)
        ],
        asks=[
            DepthLevel(lv.price, lv.qty_wh, lv.count) for lv in book.top_levels(Side.SELL, levels)
        ],
    )


def empty_depth(zone: str, epoch_id: int) -> BookDepth:
    return BookDepth(zone=zone, epoch_id=epoch_id, bids=[], asks=[])


@dataclass(frozen=True, slots=True)
class DepthStep:
    """One price of a depth chart: the Wh bid at this price or higher and the Wh asked
    at this price or lower (``None`` on the side with no level that far)."""

    price: int
    bid_wh: int | None
    ask_wh: int | None


def cumulative_depth(depth: BookDepth) -> list[DepthStep]:
    """The depth chart's steps at every level's price, ascending: the bid total at a price
    is the Wh of the bid levels at that price or higher, the ask total the Wh of the ask
    levels at that price or lower. A side is ``None`` outside the span of its levels."""
    prices = sorted({lv.price for lv in depth.bids} | {lv.price for lv in depth.asks})
    bid_prices = [lv.price for lv in depth.bids]
    ask_prices = [lv.price for lv in depth.asks]
    steps = []
    for price in prices:
        bid = (
            sum(lv.qty_wh for lv in depth.bids if lv.price >= price)
            if bid_prices and min(bid_prices) <= price <= max(bid_prices)
            else None
        )
        ask = (
            sum(lv.qty_wh for lv in depth.asks if lv.price <= price)
            if ask_prices and min(ask_prices) <= price <= max(ask_prices)
            else None
        )
        steps.append(DepthStep(price=price, bid_wh=bid, ask_wh=ask))
    return steps
