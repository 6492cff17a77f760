"""Wallet balances, operator credits, deposits and withdrawals."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr

from wattx.api.schemas.common import StrictModel


class HoldingOut(BaseModel):
    free: int
    locked: int


class ChainHoldingOut(BaseModel):
    free: int = Field(description="free in the Marketplace")
    locked: int = Field(description="locked in the Marketplace")
    wallet: int = Field(description="tokens at the address, outside the Marketplace")


class ChainWalletOut(BaseModel):
    address: str
    credit: ChainHoldingOut = Field(description="micro-units")
    energy: ChainHoldingOut = Field(description="Wh of energy tokens")


class WalletOut(BaseModel):
    account_id: str
    credit: HoldingOut = Field(description="micro-units")
    energy: HoldingOut = Field(description="Wh of energy tokens")
    chain: ChainWalletOut | None = Field(
        default=None, description="the same account on chain; null before its first chain use"
    )


class CreditDeposit(StrictModel):
    amount: StrictInt = Field(gt=0, le=10**15, description="micro-units")


class EnergyGrant(StrictModel):
    qty_wh: StrictInt = Field(gt=0, le=10**12)


class WalletDeposit(StrictModel):
    user_id: StrictStr = Field(min_length=1, max_length=32)
    amount: StrictInt = Field(gt=0, le=10**15, description="micro-units")


class WalletWithdrawal(StrictModel):
    asset: Literal["credit", "energy"]
    amount: StrictInt = Field(gt=0, le=10**15, description="micro-units, or Wh of energy")
