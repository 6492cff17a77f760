"""Wallet balances and operator credits."""

from __future__ import annotations

from pydantic import BaseModel, Field, StrictInt

from wattx.api.schemas.common import StrictModel


class HoldingOut(BaseModel):
    free: int
    locked: int


class WalletOut(BaseModel):
    account_id: str
    credit: HoldingOut = Field(description="micro-units")
    energy: HoldingOut = Field(description="Wh of energy tokens")


class CreditDeposit(StrictModel):
    amount: StrictInt = Field(gt=0, le=10**15, description="micro-units")


class EnergyGrant(StrictModel):
    qty_wh: StrictInt = Field(gt=0, le=10**12)
