"""Tables of node incentives: what each node did per incentive period (the durable
heartbeat aggregate), the periods reported to NetworkIncentives, and the slashes the
service asked for. Created by migration ``0016``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from wattx.store.models import Base
from wattx.store.types import UTCDateTime


class NodeActivityRow(Base):
    """One node in one incentive period: heartbeat intervals covered (``up_slots``, the
    newest counted in ``last_slot``), readings relayed and accepted, commands applied and
    failed, relayed batches whose signature did not verify; ``reward`` once reported."""

    __tablename__ = "node_activity"
    __table_args__ = (Index("ix_node_activity_period", "period"),)

    node_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    period: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    interval_s: Mapped[int] = mapped_column(Integer)
    up_slots: Mapped[int] = mapped_column(Integer)
    last_slot: Mapped[int] = mapped_column(Integer)
    readings: Mapped[int] = mapped_column(BigInteger)
    commands_done: Mapped[int] = mapped_column(BigInteger)
    commands_failed: Mapped[int] = mapped_column(BigInteger)
    tampered_batches: Mapped[int] = mapped_column(BigInteger)
    reward: Mapped[int | None] = mapped_column(BigInteger)


class IncentivePeriodRow(Base):
    """A period reported on chain (``report_period``), once."""

    __tablename__ = "incentive_periods"

    period: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    nodes: Mapped[int] = mapped_column(Integer)
    paid: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IncentiveSlashRow(Base):
    """A slash the service sent; ``slash_id`` is the contract's, its state is on chain."""

    __tablename__ = "incentive_slashes"

    slash_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    node_id: Mapped[str] = mapped_column(String(32), index=True)
    period: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    """When the service saw it reversed or final (until then it may still move)."""
