"""Settlement, proofs, mints and the public ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, StrictInt, StrictStr

from wattx.api.schemas.common import Page, StrictModel


class ParameterSetOut(BaseModel):
    """The governed parameters an epoch ran under."""

    hash: str = Field(description="sha256 (hex) of the canonical JSON of `values`")
    from_epoch: int = Field(description="the first epoch of this set")
    proposal_id: int | None = Field(description="the executed proposal; null: as deployed")
    values: dict[str, int]


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
    parameter_set: ParameterSetOut | None = Field(
        default=None, description="the governed parameters the epoch ran under (ledger)"
    )
    congestion_rent: int | None = Field(
        default=None,
        description="micro-units of `fees` that are congestion rent, paid to the fee (grid) "
        "account with the batch (ledger; null for an epoch cleared without a grid tree)",
    )


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


class PublicMintOut(BaseModel):
    """A mint as the public sees it: to an address, with no user or meter id."""

    epoch_id: int
    address: str
    qty_wh: int
    tx_hash: str
    created_at: datetime


class PublicMintsOut(BaseModel):
    items: list[PublicMintOut]
    page: Page


class TradeLeafOut(BaseModel):
    """Every field of the trade's Merkle leaf, in the leaf's ABI order (docs/settlement.md)."""

    trade_id: str
    epoch_id: int
    trade_id_hash: str = Field(description="0x hex keccak256 of the trade id's utf-8 bytes")
    buyer_address: str
    seller_address: str
    qty_wh: int
    delivered_wh: int
    price: int = Field(description="micro-units per kWh")
    value: int = Field(description="micro-units")
    buyer_fee: int
    seller_fee: int
    wheeling_fee: int
    leaf: str = Field(description="0x hex of keccak256 of the encoding")


class ChainAccountOut(BaseModel):
    user_id: str
    address: str
    custody: str = Field(description="custodial or self")
    created_at: datetime


class ChainAccountsOut(BaseModel):
    items: list[ChainAccountOut]
    page: Page


class ContractOut(BaseModel):
    name: str
    address: str
    abi: list[dict[str, Any]]


class ContractsOut(BaseModel):
    chain_id: int
    block_number: int = Field(description="the block the deployment started in")
    fee_account: str
    contracts: list[ContractOut]


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
