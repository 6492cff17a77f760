"""The records every part of wattx shares: ids, orders, trades, epochs, errors.

Pure Python, standard library only. Adapters (store, api, settlement) convert
to and from these records at their edge.
"""

from wattx.domain.epochs import DeliveryEpoch, EpochClock, EpochSchedule
from wattx.domain.errors import (
    ConflictError,
    DomainError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from wattx.domain.orders import Order, OrderKind, OrderStatus, Side
from wattx.domain.trades import Trade
from wattx.domain.zones import Tariff, TimeOfUseBand, Zone

__all__ = [
    "ConflictError",
    "DeliveryEpoch",
    "DomainError",
    "EpochClock",
    "EpochSchedule",
    "NotFoundError",
    "Order",
    "OrderKind",
    "OrderStatus",
    "PermissionDeniedError",
    "Side",
    "Tariff",
    "TimeOfUseBand",
    "Trade",
    "ValidationError",
    "Zone",
]
