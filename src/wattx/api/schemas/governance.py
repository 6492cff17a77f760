"""Governance: governed parameters, proposals, votes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr

from wattx.api.schemas.common import Page, StrictModel


class GovernanceRulesOut(BaseModel):
    voting_period_s: int
    timelock_s: int
    quorum_wh: int = Field(description="votes cast needed, in Wh of verified generation")


class ParameterOut(BaseModel):
    name: str
    value: int = Field(description="the executed on-chain value")
    minimum: int
    maximum: int = Field(description="the most a proposal may set")
    unit: str


class ParametersOut(BaseModel):
    items: list[ParameterOut]
    rules: GovernanceRulesOut
    chain_time: datetime


class ProposalIn(StrictModel):
    parameter: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    value: Annotated[StrictInt, Field(ge=0, le=2**256 - 1)]
    rationale: Annotated[StrictStr, Field(min_length=1, max_length=4_000)]


class VoteIn(StrictModel):
    support: StrictBool


class ProposalOut(BaseModel):
    id: int
    parameter: str
    new_value: int
    proposer: str = Field(description="the proposer's chain address")
    rationale: str | None = Field(description="null for a proposal not made through wattx")
    status: str = Field(
        description="voting, quorum_not_reached, rejected, timelocked, executable or executed"
    )
    votes_for: int = Field(description="Wh of verified generation")
    votes_against: int
    quorum_wh: int
    quorum_reached: bool
    voting_ends: datetime = Field(description="chain time; votes count before it")
    executable_at: datetime = Field(description="chain time; voting end plus the timelock")
    executed: bool
    applies_from_epoch: int | None = Field(
        description="executed and applied: the first delivery epoch under the new value"
    )
    chain_time: datetime


class ProposalsOut(BaseModel):
    items: list[ProposalOut]
    total: int
    page: Page


class VoteOut(BaseModel):
    weight_wh: int = Field(description="the vote's weight: the voter's verified generation")
    support: bool
    proposal: ProposalOut
