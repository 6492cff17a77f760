"""Events the market publishes, with the audience each may be shown to."""

from __future__ import annotations

from collections.abc import Iterable

from wattx.bus.events import Event, EventType
from wattx.domain import Order, Trade
from wattx.services.trading.views import order_view, trade_view


def order_event(kind: EventType, order: Order) -> Event:
    return Event(kind, order_view(order), audience=frozenset({order.owner}))


def trade_event(trade: Trade) -> Event:
    return Event(
        EventType.TRADE_EXECUTED, trade_view(trade), audience=frozenset({trade.buyer, trade.seller})
    )


def book_event(zone: str, epoch_id: int) -> Event:
    """Public: tells watchers to refetch the depth of one book."""
    return Event(EventType.BOOK_UPDATED, {"zone": zone, "epoch_id": epoch_id})


def books_touched(orders: Iterable[Order], trades: Iterable[Trade]) -> list[Event]:
    keys = {(order.zone, order.epoch_id) for order in orders}
    keys.update((trade.seller_zone, trade.epoch_id) for trade in trades)
    keys.update((trade.buyer_zone, trade.epoch_id) for trade in trades)
    return [book_event(zone, epoch_id) for zone, epoch_id in sorted(keys)]
