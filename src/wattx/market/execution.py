"""The money of a match: value, fees, wheeling, and the escrow that covers it.

``value = qty_wh * price // 1000`` goes to the seller less the seller's fee;
the buyer pays ``value + wheeling + buyer fee``. Both fees are ``fee_bps`` of
the value, rounded down (the payer keeps the dust); wheeling is rounded down.
"""

from __future__ import annotations

from datetime import datetime

from wattx.domain import Order, Side, Trade
from wattx.market.rates import ZoneRate
from wattx.units import fee_ceil, fee_of, trade_value


def escrow_required(side: Side, qty_wh: int, limit_price: int, fee_bps: int) -> int:
    """What an order must lock before it is accepted.

    Sell: the Wh of energy tokens it offers (``qty_wh``). Buy: micro-units of
    credit covering its worst case, the landed limit on the whole delivered
    quantity rounded up, plus the buyer's fee on that, rounded up. Every trade
    the buy makes costs at most its delivered Wh at the landed limit plus the
    fee on its value, so a buy never spends more than it locked, pro rata.
    """
    if side is Side.SELL:
        return qty_wh
    worst_cost = -(-qty_wh * limit_price // 1000)
    return worst_cost + fee_ceil(worst_cost, fee_bps)


def make_trade(
    *,
    trade_id: str,
    seq: int,
    buy: Order,
    sell: Order,
    sold_wh: int,
    delivered_wh: int,
    price: int,
    rate: ZoneRate,
    fee_bps: int,
    executed_at: datetime,
    congestion_fee: int = 0,
) -> Trade:
    """The trade record of one match. Its zone is the buyer's: where the energy lands.

    ``congestion_fee`` (the coupled auction's rent on the links the energy
    crossed) is added to the wheeling fee: the buyer pays it, the grid gets it.
    """
    value = trade_value(sold_wh, price)
    fee = fee_of(value, fee_bps)
    return Trade(
        id=trade_id,
        epoch_id=buy.epoch_id,
        zone=buy.zone,
        buy_order_id=buy.id,
        sell_order_id=sell.id,
        buyer=buy.owner,
        seller=sell.owner,
        buyer_zone=buy.zone,
        seller_zone=sell.zone,
        qty_wh=sold_wh,
        delivered_wh=delivered_wh,
        price=price,
        value=value,
        buyer_fee=fee,
        seller_fee=fee,
        wheeling_fee=rate.wheeling_fee(sold_wh) + congestion_fee,
        seq=seq,
        executed_at=executed_at,
    )
