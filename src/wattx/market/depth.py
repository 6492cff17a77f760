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
