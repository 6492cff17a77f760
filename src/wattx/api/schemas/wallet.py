"""Wallet balances, operator credits, deposits and withdrawals, self-custody addresses."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr

from wattx.api.schemas.common import Page, StrictModel


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


_HEX_SIGNATURE = r"^0x[0-9a-fA-F]{130}$"


class WithdrawPermitOut(BaseModel):
    """Send ``Marketplace.withdraw_with_permit(token, chain_amount, nonce, deadline, v, r, s)``
    signed by ``account`` before ``deadline`` (unix seconds, chain time)."""

    marketplace: str
    account: str
    asset: Literal["credit", "energy"]
    token: str
    amount: int = Field(description="micro-units, or Wh of energy, as withdrawn off chain")
    chain_amount: int = Field(description="token base units")
    nonce: str = Field(description="uint256 as a decimal string")
    deadline: int
    signature: str = Field(description="the operator's 65-byte signature (r, s, v), hex")
    v: int
    r: str
    s: str


class WithdrawalOut(WalletOut):
    permit: WithdrawPermitOut | None = Field(
        default=None, description="self-custody accounts: the permit to send; else null"
    )


class PermitCancellation(StrictModel):
    """An unused permit, as issued, to void on chain and return to the free balance."""

    asset: Literal["credit", "energy"]
    amount: StrictInt = Field(gt=0, le=10**15, description="micro-units, or Wh of energy")
    nonce: StrictStr = Field(pattern=r"^[0-9]{1,78}$")
    deadline: StrictInt = Field(ge=0, le=2**64)
    signature: StrictStr = Field(pattern=_HEX_SIGNATURE)


class AddressChallengeRequest(StrictModel):
    address: StrictStr = Field(min_length=40, max_length=42)


class AddressChallengeOut(BaseModel):
    address: str
    nonce: str
    message: str = Field(description="Sign exactly this text (EIP-191 personal message)")
    expires_at: datetime


class AddressRegistration(StrictModel):
    address: StrictStr = Field(min_length=40, max_length=42)
    nonce: StrictStr = Field(min_length=1, max_length=64)
    signature: StrictStr = Field(min_length=1, max_length=200)


class ChainAccountOut(BaseModel):
    user_id: str
    address: str
    custody: Literal["custodial", "self"]


class RawTransaction(StrictModel):
    raw: StrictStr = Field(
        pattern=r"^0x([0-9a-fA-F]{2})+$",
        max_length=2 + 2 * 16_384,
        description="a signed Ethereum transaction, hex",
    )


class HoldingDelta(BaseModel):
    credit: int = Field(description="micro-units")
    energy: int = Field(description="Wh")


class RelayOut(BaseModel):
    tx_hash: str
    block_number: int
    events: list[str] = Field(description="names of the contract events it emitted")
    credited: HoldingDelta = Field(description="added to the off-chain free balance")
    wallet: WalletOut


class DepositRequestIn(StrictModel):
    amount: StrictInt = Field(ge=1, le=10**15, description="micro-units paid to the operator")
    reference: StrictStr = Field(
        min_length=1, max_length=64, description="the payment's reference, for the operator"
    )


class DepositRequestOut(BaseModel):
    id: str
    user_id: str
    amount: int = Field(description="micro-units")
    reference: str
    status: Literal["pending", "approved", "rejected"]
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None


class DepositRequestsOut(BaseModel):
    items: list[DepositRequestOut]
    page: Page
