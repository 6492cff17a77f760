"""The answers of the order routes, rendered without building their response models.

Validating an answer into :class:`~wattx.api.schemas.market.OrderBatchOut` and
serialising the models again cost more than the rest of the HTTP side of a batch of
orders. An order placed by this process has views made by
:func:`wattx.services.trading.views.order_view` and ``trade_view``: plain values in the
fields of :class:`OrderOut` and :class:`TradeOut`, times in ISO 8601. For those the
functions here give the same JSON, byte for byte, as the models would (a test compares
them): each schema's fields in its order, its defaults where a view has no value, and UTC
times written with ``Z`` as the models write them. Anything else (a replay of a stored
answer, a refusal) goes through the models as before.
"""

from __future__ import annotations

import functools
from typing import Any

import pydantic_core

from wattx.api.schemas.market import OrderBatchItemOut, SubmitOut, TradeOut

_TRADE_FIELDS = tuple(TradeOut.model_fields)
_TRADE_DEFAULTS = {
    name: field.default for name, field in TradeOut.model_fields.items() if not field.is_required()
}


def order_out(view: dict[str, Any]) -> dict[str, Any]:
    """An order view as ``OrderOut`` renders it to JSON.

    A view holds ``OrderOut``'s fields in its order (``order_view``; the test of this
    module fails otherwise), so it is copied whole: picking the fields one by one cost
    several times as much, a few percent of a batch's CPU.
    """
    out = dict(view)
    out["created_at"] = _time_text(out["created_at"])
    return out


def trade_out(view: dict[str, Any]) -> dict[str, Any]:
    """A trade view (as its reader may see it) as ``TradeOut`` renders it to JSON."""
    out = {name: view[name] if name in view else _TRADE_DEFAULTS[name] for name in _TRADE_FIELDS}
    out["executed_at"] = _time_text(out["executed_at"])
    return out


def placed_item(order: dict[str, Any], trades: list[dict[str, Any]]) -> dict[str, Any]:
    """The batch answer's item of an order placed now, as ``OrderBatchItemOut`` renders it."""
    return {
        "status": 201,
        "replayed": False,
        "order": order_out(order),
        "trades": [trade_out(trade) for trade in trades],
        "problem": None,
    }


def modelled_item(item: dict[str, Any]) -> dict[str, Any]:
    """Any other item (a replay, a refusal), through ``OrderBatchItemOut``."""
    rendered: dict[str, Any] = OrderBatchItemOut.model_validate(item).model_dump(mode="json")
    return rendered


def placed_answer(body: dict[str, Any], trades: list[dict[str, Any]]) -> bytes:
    """``POST /orders``'s answer for an order placed now, as ``SubmitOut`` renders it."""
    return to_json(
        {
            "order": order_out(body["order"]),
            "trades": [trade_out(trade) for trade in trades],
            "limited_by": list(body["limited_by"]),
        }
    )


def modelled_answer(body: dict[str, Any], trades: list[dict[str, Any]]) -> bytes:
    """``POST /orders``'s answer for a replay, through ``SubmitOut``."""
    return SubmitOut.model_validate({**body, "trades": trades}).model_dump_json().encode()


def to_json(value: Any) -> bytes:
    """Compact JSON, as the models' ``model_dump_json`` writes it."""
    return pydantic_core.to_json(value)


@functools.lru_cache(maxsize=256)
def _time_text(value: str | None) -> str | None:
    # Pydantic writes an aware UTC time with "Z" where isoformat() writes "+00:00", and
    # other times as isoformat() does. Cached: a batch's orders and trades share a time.
    if value is not None and value.endswith("+00:00"):
        return value[:-6] + "Z"
    return value
