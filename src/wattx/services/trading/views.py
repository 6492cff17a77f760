"""Plain JSON-ready views of orders and trades, shared by responses, events and the
idempotency store (which must replay exactly what was first answered)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from wattx.domain import Order, Trade
from wattx.store.models import OrderRow, TradeRow
from wattx.store.trades import trade_columns

_last_time: tuple[datetime | None, str | None] = (None, None)


def time_text(value: datetime | None) -> str | None:
    """``value.isoformat()`` (``None`` for ``None``), kept for the last time asked.

    The orders and trades of one write transaction share its time, the same object,
    and ``isoformat`` cost more than the rest of a view. The last time and its text
    are one tuple, replaced at once, so a thread never reads one without the other."""
    global _last_time
    last, text = _last_time
    if value is last:
        return text
    text = None if value is None else value.isoformat()
    _last_time = (value, text)
    return text


def order_view(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "owner": order.owner,
        "side": order.side.value,
        "kind": order.kind.value,
        "zone": order.zone,
        "epoch_id": order.epoch_id,
        "qty_wh": order.qty_wh,
        "limit_price": order.limit_price,
        "client_order_id": order.client_order_id,
        "created_at": time_text(order.created_at),
        "seq": order.seq,
        "filled_wh": order.filled_wh,
        "cancelled_wh": order.cancelled_wh,
        "remaining_wh": order.remaining_wh,
        "status": order.status.value,
    }


def order_row_view(row: OrderRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "owner": row.owner_id,
        "side": row.side,
        "kind": row.kind,
        "zone": row.zone,
        "epoch_id": row.epoch_id,
        "qty_wh": row.qty_wh,
        "limit_price": row.limit_price,
        "client_order_id": row.client_order_id,
        "created_at": row.created_at.isoformat(),
        "seq": row.seq,
        "filled_wh": row.filled_wh,
        "cancelled_wh": row.cancelled_wh,
        "remaining_wh": row.qty_wh - row.filled_wh - row.cancelled_wh,
        "status": row.status,
    }


def trade_view(trade: Trade) -> dict[str, Any]:
    view = trade_columns(trade, None)
    view["executed_at"] = time_text(trade.executed_at)
    return view


def trade_row_view(row: TradeRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "seq": row.seq,
        "epoch_id": row.epoch_id,
        "zone": row.zone,
        "buy_order_id": row.buy_order_id,
        "sell_order_id": row.sell_order_id,
        "buyer": row.buyer,
        "seller": row.seller,
        "buyer_zone": row.buyer_zone,
        "seller_zone": row.seller_zone,
        "qty_wh": row.qty_wh,
        "delivered_wh": row.delivered_wh,
        "price": row.price,
        "value": row.value,
        "buyer_fee": row.buyer_fee,
        "seller_fee": row.seller_fee,
        "wheeling_fee": row.wheeling_fee,
        "executed_at": row.executed_at.isoformat(),
        "settlement_status": row.settlement_status,
        "settlement_tx_hash": row.settlement_tx_hash,
    }


_PARTY_FIELDS = (("buyer", "buy_order_id"), ("seller", "sell_order_id"))


def trade_seen_by(view: dict[str, Any], viewer: str, *, sees_everything: bool) -> dict[str, Any]:
    """A trade view as ``viewer`` may see it: operators and auditors see both parties;
    a party sees its own user id and order, never its counterparty's (``None``)."""
    if sees_everything:
        return view
    seen = dict(view)
    for party, order in _PARTY_FIELDS:
        if seen[party] != viewer:
            seen[party] = None
            seen[order] = None
    return seen
