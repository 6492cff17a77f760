"""Node incentives: bonds, rewards per period, slashes, the reward pool."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictInt

from wattx.api.schemas.common import StrictModel

# Credit micro-units; the contract takes uint256, the database BigInteger.
Amount = Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]


class AmountIn(StrictModel):
    amount: Amount = Field(description="credit micro-units")


class IncentivesOut(BaseModel):
    pool: int = Field(description="credit micro-units not yet paid as rewards")
    last_period_reported: int
    current_period: int
    period_s: int
    period_start: datetime
    period_end: datetime
    parameters: dict[str, int] = Field(description="the governed incentive_* values in force")


class NodePeriodOut(BaseModel):
    period: int
    uptime_bps: int = Field(
        description="heartbeat intervals covered, as basis points of the period"
    )
    up_slots: int
    readings: int = Field(description="readings relayed and accepted")
    commands_done: int
    commands_failed: int
    tampered_batches: int = Field(description="relayed batches whose meter signature failed")
    reward: int | None = Field(description="null until the period is reported")


class SlashOut(BaseModel):
    slash_id: int
    period: int
    reason: str
    amount: int
    state: str = Field(description="held, appealed, reversed or final")
    appeal_ends: datetime
    tx_hash: str


class NodeRewardsOut(BaseModel):
    node_id: str
    registered: bool = Field(description="registered on NetworkIncentives (at its first bond)")
    owner_address: str | None
    bond: int
    unbonding: int
    unbonding_ends: datetime | None
    earned: int
    claimed: int
    pending: int
    periods: list[NodePeriodOut]
    slashes: list[SlashOut]


class BondOut(BaseModel):
    node_id: str
    bond: int


class UnbondOut(BaseModel):
    node_id: str
    unbonding_ends: datetime


class PaidOut(BaseModel):
    node_id: str
    amount: int = Field(description="credit micro-units paid to the owner's wallet")


class PoolOut(BaseModel):
    pool: int


class PeriodReportOut(BaseModel):
    period: int
    nodes: int
    paid: int
    tx_hash: str
    rewards: dict[str, int]
    slashes: list[SlashOut]
