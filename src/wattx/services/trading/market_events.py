"""Events the market publishes, with the audience each may be shown to."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from wattx.bus.events import Event, EventType
from wattx.domain import Order, Trade
from wattx.services.trading.views import order_view, trade_view


def order_event(
    kind: EventType,
    order: Order,
    view: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> Event:
    """``view``: the order's :func:`order_view` when the caller has it already (an answer's,
    shared: neither the answer nor the event changes it). ``at``: when it happened, when
    the caller tells one time for many events (else now)."""
    data = view if view is not None else order_view(order)
    return Event(kind, data, frozenset({order.owner}), at or datetime.now(UTC))


def trade_event(
    trade: Trade, view: dict[str, Any] | None = None, *, at: datetime | None = None
) -> Event:
    """``view`` and ``at``: as for :func:`order_event`, the trade's :func:`trade_view`."""
    data = view if view is not None else trade_view(trade)
    return Event(
        EventType.TRADE_EXECUTED,
        data,
        frozenset({trade.buyer, trade.seller}),
        at or datetime.now(UTC),
    )


def book_event(zone: str, epoch_id: int, *, at: datetime | None = None) -> Event:
    """Public: tells watchers to refetch the depth of one book."""
    return Event(
        EventType.BOOK_UPDATED, {"zone": zone, "epoch_id": epoch_id}, None, at or datetime.now(UTC)
    )


def books_touched(
    orders: Iterable[Order], trades: Iterable[Trade], *, at: datetime | None = None
) -> list[Event]:
    keys = {(order.zone, order.epoch_id) for order in orders}
    keys.update((trade.seller_zone, trade.epoch_id) for trade in trades)
    keys.update((trade.buyer_zone, trade.epoch_id) for trade in trades)
    return [book_event(zone, epoch_id, at=at) for zone, epoch_id in sorted(keys)]
