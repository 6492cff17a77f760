"""Tables of governance: what the chain does not hold about a proposal (its rationale,
who proposed it through the service)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from wattx.store.models import Base
from wattx.store.types import UTCDateTime


class GovernanceProposalRow(Base):
    """A proposal made through the service; ``proposal_id`` is the Governance contract's."""

    __tablename__ = "governance_proposals"

    proposal_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    proposer_id: Mapped[str] = mapped_column(String(32))
    parameter: Mapped[str] = mapped_column(String(64))
    new_value: Mapped[int] = mapped_column(BigInteger)
    rationale: Mapped[str] = mapped_column(Text)
    tx_hash: Mapped[str] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ParameterSetRow(Base):
    """The governed parameters' values from ``from_epoch`` on: the first row (epoch 0) holds
    the values the contract was deployed with, each further row one executed proposal's
    change, applied from the next epoch that held no order. An epoch ran under the row
    with the latest ``from_epoch`` at or before it."""

    __tablename__ = "parameter_sets"

    from_epoch: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))
    values_json: Mapped[str] = mapped_column(Text)
    proposal_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MarketPauseRow(Base):
    """An emergency pause of one zone's order intake, the one operator action on the
    market that bypasses governance; the row exists while the pause lasts (the audit log
    keeps every pause and resume). Created by migration ``0015``."""

    __tablename__ = "market_pauses"

    zone_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    paused_by: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(200))
    paused_at: Mapped[datetime] = mapped_column(UTCDateTime())
