"""Orders: one participant's intent to buy or sell energy in one delivery epoch."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderKind(StrEnum):
    """How an order meets the book.

    ``limit`` rests until filled, cancelled or expired at gate closure.
    ``market_fok`` fills completely against the book at once or not at all.
    ``market_ioc`` fills what it can at once; the rest is cancelled.
    Market orders may carry a limit price as a protection bound.
    """

    LIMIT = "limit"
    MARKET_FOK = "market_fok"
    MARKET_IOC = "market_ioc"


class OrderStatus(StrEnum):
    OPEN = "open"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_STATUSES


# A set, not a tuple of members: asked once or more per order and trade.
_FINAL_STATUSES = frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED})


@dataclass(slots=True, eq=False)
class Order:
    """An order and its fill state.

    Quantities are Wh, ``limit_price`` is micro-units per kWh. For a cross-zone
    buy the limit is the most the buyer pays per kWh *landed* (delivered, after
    losses, wheeling included); for a sell it is the least the seller accepts
    per kWh sold. ``seq`` is the engine's arrival number (time priority).
    Invariant: ``filled_wh + cancelled_wh + remaining_wh == qty_wh``.
    """

    id: str
    owner: str
    side: Side
    qty_wh: int
    limit_price: int
    zone: str
    epoch_id: int
    kind: OrderKind = OrderKind.LIMIT
    client_order_id: str | None = None
    created_at: datetime | None = None
    seq: int = 0
    filled_wh: int = 0
    cancelled_wh: int = 0
    status: OrderStatus = OrderStatus.OPEN

    @property
    def remaining_wh(self) -> int:
        return self.qty_wh - self.filled_wh - self.cancelled_wh

    @property
    def is_open(self) -> bool:
        return not self.status.is_final
