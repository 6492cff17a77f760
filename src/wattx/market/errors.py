"""The market's rules, one exception type each, with stable codes.

Codes are part of the public contract (the API reports them): never rename one.
"""

from __future__ import annotations

from wattx.domain.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)


class UnknownZoneError(ValidationError):
    code = "unknown_zone"
    title = "Unknown zone"


class InvalidQuantityError(ValidationError):
    code = "invalid_quantity"
    title = "Quantity must be a positive number of Wh"


class PriceOutOfBoundsError(ValidationError):
    code = "price_out_of_bounds"
    title = "Price outside the zone's feed-in and retail tariffs"


class OrderKindNotSupportedError(ValidationError):
    code = "order_kind_not_supported"
    title = "Order kind not supported by the zone's mechanism"


class InvalidOrderStateError(ValidationError):
    code = "invalid_order_state"
    title = "Order fill state is not valid here"


class GateClosedError(ConflictError):
    code = "gate_closed"
    title = "Gate closure has passed for this epoch"


class GateNotClosedError(ConflictError):
    code = "gate_not_closed"
    title = "Gate closure has not yet passed for this epoch"


class DuplicateOrderError(ConflictError):
    code = "duplicate_order"
    title = "An order with this id already exists"


class DuplicateClientOrderIdError(ConflictError):
    code = "duplicate_client_order_id"
    title = "This owner already used this client order id"


class OrderNotOpenError(ConflictError):
    code = "order_not_open"
    title = "Order is no longer open"


class OrderNotFoundError(NotFoundError):
    code = "order_not_found"
    title = "Order not found"


class TradeNotFoundError(NotFoundError):
    code = "trade_not_found"
    title = "Trade not found"


class NotOrderOwnerError(PermissionDeniedError):
    code = "not_order_owner"
    title = "Order belongs to another owner"


class MarketPausedError(ConflictError):
    code = "market_paused"
    title = "The operator paused this market's order intake"


class MarketAlreadyPausedError(ConflictError):
    code = "market_already_paused"
    title = "The market is paused already"


class MarketNotPausedError(ConflictError):
    code = "market_not_paused"
    title = "The market is not paused"
