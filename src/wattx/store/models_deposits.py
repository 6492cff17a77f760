"""Deposit requests: a custodial participant's word that they paid the operator, which
the operator approves (the credit deposit) or rejects. Created by migration ``0018``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from wattx.store.models import Base
from wattx.store.types import UTCDateTime


class DepositRequestRow(Base):
    __tablename__ = "deposit_requests"
    __table_args__ = (
        Index("ix_deposit_requests_user", "user_id"),
        Index("ix_deposit_requests_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)  # micro-units
    reference: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # pending, approved, rejected
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
