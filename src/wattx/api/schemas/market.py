"""Orders, trades, books, markets and epochs."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictInt, model_validator

from wattx.api.schemas.common import Page, Problem, StrictModel
from wattx.domain import OrderKind, OrderStatus, Side
from wattx.market import Mechanism


class OrderIn(StrictModel):
    side: Side
    qty_wh: StrictInt = Field(gt=0, le=10**12, description="Wh (buy: delivered; sell: sold)")
    zone: str = Field(min_length=1, max_length=40)
    limit_price: StrictInt | None = Field(
        default=None,
        ge=0,
        le=10**12,
        description="micro-units per kWh; required for limit orders",
    )
    epoch_id: StrictInt | None = Field(
        default=None, ge=0, le=10**12, description="default: the first epoch open for orders"
    )
    kind: OrderKind = OrderKind.LIMIT
    client_order_id: str | None = Field(default=None, min_length=1, max_length=64)


class OrderOut(BaseModel):
    id: str
    owner: str
    side: Side
    kind: OrderKind
    zone: str
    epoch_id: int
    qty_wh: int
    limit_price: int
    client_order_id: str | None
    created_at: datetime | None
    seq: int
    filled_wh: int
    cancelled_wh: int
    remaining_wh: int
    status: OrderStatus


class TradeOut(BaseModel):
    id: str
    seq: int
    epoch_id: int
    zone: str
    buy_order_id: str | None = Field(description="null when the buy order is not the caller's")
    sell_order_id: str | None = Field(description="null when the sell order is not the caller's")
    buyer: str | None = Field(
        description="buyer's user id; null for the seller (operators, auditors: always)"
    )
    seller: str | None = Field(
        description="seller's user id; null for the buyer (operators, auditors: always)"
    )
    buyer_zone: str
    seller_zone: str
    qty_wh: int
    delivered_wh: int
    price: int
    value: int
    buyer_fee: int
    seller_fee: int
    wheeling_fee: int
    executed_at: datetime | None
    settlement_status: str | None = Field(
        default=None,
        description="null until the epoch's batch is written for settlement; "
        "then pending, settled or failed",
    )
    settlement_tx_hash: str | None = Field(
        default=None, description="the settlement transaction, once settled"
    )


class SubmitOut(BaseModel):
    order: OrderOut
    trades: list[TradeOut]
    limited_by: list[str] = Field(
        default_factory=list,
        description="grid limits that stopped matching while Wh stayed open "
        "(`child-parent:up|down` on a grid tree, `zone:export|import` without one)",
    )


ORDER_BATCH_LIMIT = 1_000
"""Orders per ``POST /orders/batch`` at most."""
ORDER_BATCH_MAX_BYTES = 256 * 1024
"""The body limit of ``POST /orders/batch`` (other routes: ``max_body_bytes``)."""


class OrderBatchIn(StrictModel):
    orders: list[OrderIn] = Field(
        min_length=1,
        max_length=ORDER_BATCH_LIMIT,
        description=f"1 to {ORDER_BATCH_LIMIT} orders, placed in this order in one transaction",
    )


class OrderBatchItemOut(BaseModel):
    """One order's answer, at the order's index: what ``POST /orders`` would have answered."""

    status: int = Field(
        description="201 placed (a replay: the first answer's), else the problem's status"
    )
    replayed: bool = False
    order: OrderOut | None = None
    trades: list[TradeOut] | None = None
    problem: Problem | None = Field(default=None, description="why this order was refused")


class OrderBatchOut(BaseModel):
    results: list[OrderBatchItemOut]
    placed: int = Field(description="orders placed by this request")
    replayed: int = Field(description="orders answered from an earlier submission")
    refused: int = Field(description="orders refused by a rule (they changed nothing)")


class OrderAmend(StrictModel):
    """New terms for an open order; what is left out stays as it was."""

    qty_wh: StrictInt | None = Field(
        default=None,
        gt=0,
        le=10**12,
        description="the replacement's whole quantity, Wh; default: what is still open",
    )
    limit_price: StrictInt | None = Field(
        default=None, ge=0, le=10**12, description="micro-units per kWh"
    )

    @model_validator(mode="after")
    def _changes_something(self) -> OrderAmend:
        if self.qty_wh is None and self.limit_price is None:
            raise ValueError("give qty_wh, limit_price or both")
        return self


class AmendOut(SubmitOut):
    replaces: str = Field(description="id of the order this one replaced (now cancelled)")


class OrderList(BaseModel):
    items: list[OrderOut]
    page: Page


class TradeList(BaseModel):
    items: list[TradeOut]
    page: Page


class LevelOut(BaseModel):
    price: int
    qty_wh: int
    orders: int


class DepthOut(BaseModel):
    zone: str
    epoch_id: int
    bids: list[LevelOut]
    asks: list[LevelOut]


class EpochOut(BaseModel):
    id: int
    start: datetime
    end: datetime
    gate_closure: datetime
    open_for_orders: bool


class PauseOut(BaseModel):
    zone: str
    paused_by: str
    reason: str
    paused_at: datetime


class PauseIn(StrictModel):
    reason: str = Field(min_length=1, max_length=200)


class MarketOut(BaseModel):
    zone: str
    name: str
    mechanism: Mechanism
    current_epoch: EpochOut
    upcoming: list[EpochOut]
    paused: PauseOut | None = Field(
        default=None, description="set while the operator has paused the order intake"
    )


class MarketsOut(BaseModel):
    fee_bps: int
    epoch_length_s: int
    gate_closure_lead_s: int
    markets: list[MarketOut]


class LinkCongestionOut(BaseModel):
    """One grid link direction after a coupled auction."""

    child: str
    parent: str
    direction: Literal["up", "down"] = Field(description="up: child to parent")
    flow_wh: int = Field(description="Wh sold across the link in the auction")
    capacity_wh: int | None = Field(description="what was left of the epoch's capacity")
    shadow_price: int = Field(description="micro-units per kWh; > 0 when the limit binds")
    rent: int = Field(description="micro-units, paid by buyers to the grid account")


class ClosedEpochOut(BaseModel):
    id: int
    closed_at: datetime
    trade_count: int
    expired_count: int
    clearing_prices: dict[str, int | None]
    forced: bool
    congestion: list[LinkCongestionOut] = Field(default_factory=list)


class EpochsOut(BaseModel):
    current: EpochOut
    upcoming: list[EpochOut]
    closed: list[ClosedEpochOut]
    page: Page


class ClosureOut(BaseModel):
    epoch_id: int
    trades: list[TradeOut]
    expired: int
    clearing_prices: dict[str, int | None]
    forced: bool
    congestion: list[LinkCongestionOut] = Field(default_factory=list)


class ReferenceFactorOut(BaseModel):
    name: str
    value_ppm: int = Field(description="the factor applied, parts per million (1,000,000 = x1)")
    unclamped_ppm: int = Field(description="the formula's value before the clamp")
    min_ppm: int
    max_ppm: int
    clamped: bool
    weight_ppm: int = Field(description="the sensitivity, after governance's weight")
    inputs: dict[str, int] = Field(description="what the factor was computed from")


class ReferencePriceOut(BaseModel):
    zone: str
    epoch_id: int
    price: int = Field(description="micro-units per kWh; advisory, never a limit")
    feed_in: int
    retail: int
    base: int = Field(description="micro-units per kWh, before the factors")
    base_source: Literal["governance", "last_trade", "tariff_midpoint"]
    from_zone: str = Field(description="the supplier's zone the distance factor prices")
    factors: list[ReferenceFactorOut] = Field(description="in the order they are applied")
