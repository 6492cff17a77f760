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
