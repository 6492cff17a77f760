"""Settlement, proofs, mints and the public ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, StrictInt, StrictStr

from wattx.api.schemas.common import Page, StrictModel


class SettlementOut(BaseModel):
    epoch_id: int
    status: str = Field(description="pending, confirmed or failed")
    merkle_root: str
    trade_count: int
    volume_wh: int
    value: int = Field(description="micro-units")
    fees: int = Field(description="micro-units")
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    tx_hash: str | None
    block_number: int | None
    gas_used: int | None = Field(
        description="gas of the settlement transaction; null before it, or if adopted after a crash"
    )
    created_at: datetime
    confirmed_at: datetime | None


class TradeProofOut(BaseModel):
    trade_id: str
    epoch_id: int
    leaf: str = Field(description="0x hex of the 32-byte leaf")
    proof: list[str] = Field(description="siblings from the leaf up, 0x hex")
    root: str
    tx_hash: str | None
    verified_on_chain: bool = Field(description="Marketplace.verify_trade_proof on the chain")


class MintOut(BaseModel):
    meter_id: str
    epoch_id: int
    owner_id: str
    address: str
    qty_wh: int
    tx_hash: str
    created_at: datetime


class MintsOut(BaseModel):
    items: list[MintOut]
    page: Page


class MintRunIn(BaseModel):
    through_epoch: int | None = Field(
        default=None, ge=0, le=10**12, description="default: the last ended epoch"
    )


class LedgerOverviewOut(BaseModel):
    minted_wh: int
    retired_wh: int
    supply_wh: int
    settled_epochs: int
    settled_volume_wh: int
    settled_value: int = Field(description="micro-units")
    fees: int = Field(description="micro-units")


class ChainEventOut(BaseModel):
    block_number: int
    tx_hash: str
    log_index: int
    contract: str
    name: str
    args: dict[str, Any]


class ChainEventsOut(BaseModel):
    items: list[ChainEventOut]
    page: Page


class SettlementsOut(BaseModel):
    items: list[SettlementOut]
    page: Page


class PricePointOut(BaseModel):
    epoch_id: int
    zone: str
    average_price: int = Field(description="volume-weighted, micro-units per kWh")
    low_price: int
    high_price: int
    volume_wh: int
    value: int


class PriceHistoryOut(BaseModel):
    items: list[PricePointOut]
    page: Page


class RetirementIn(StrictModel):
    qty_wh: StrictInt = Field(gt=0, le=10**12)
    reason: StrictStr = Field(min_length=1, max_length=64)


class RetirementOut(BaseModel):
    id: int
    qty_wh: int
    reason: str
    tx_hash: str
    at: datetime
