"""Trades: a matched quantity between one buy order and one sell order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Trade:
    """One execution.

    ``qty_wh`` is the energy the seller delivers into the grid; ``delivered_wh``
    is what reaches the buyer after the zone-to-zone loss (equal within one zone
    with no loss). ``value`` is ``qty_wh * price // 1000``, paid to the seller.
    The buyer pays ``value + wheeling_fee + buyer_fee``; the seller receives
    ``value - seller_fee``. Fees and the wheeling charge go to the fee account.
    """

    id: str
    epoch_id: int
    zone: str
    buy_order_id: str
    sell_order_id: str
    buyer: str
    seller: str
    buyer_zone: str
    seller_zone: str
    qty_wh: int
    delivered_wh: int
    price: int
    value: int
    buyer_fee: int
    seller_fee: int
    wheeling_fee: int
    seq: int
    executed_at: datetime | None = None

    @property
    def buyer_pays(self) -> int:
        return self.value + self.wheeling_fee + self.buyer_fee

    @property
    def seller_receives(self) -> int:
        return self.value - self.seller_fee

    @property
    def fees(self) -> int:
        return self.buyer_fee + self.seller_fee + self.wheeling_fee
