"""Tables of the control plane: nodes, their keys, registration tokens, commands,
the meters behind each node, and the audit chain. Created by migration ``0010``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from wattx.store.models import Base
from wattx.store.types import UTCDateTime


class NodeRow(Base):
    __tablename__ = "nodes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    owner_id: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(12))  # active | revoked
    health: Mapped[str] = mapped_column(String(12))  # last published NodeHealth
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_interval_s: Mapped[int] = mapped_column(Integer)
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    linked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    link_id: Mapped[str | None] = mapped_column(String(32))
    uptime_s: Mapped[int | None] = mapped_column(BigInteger)
    software_version: Mapped[str | None] = mapped_column(String(40))
    buffer_depth: Mapped[int | None] = mapped_column(BigInteger)
    device_summary: Mapped[str] = mapped_column(Text)  # JSON object
    readings_relayed: Mapped[int] = mapped_column(BigInteger)
    batches_rejected: Mapped[int] = mapped_column(BigInteger)
    foreign_batches: Mapped[int] = mapped_column(BigInteger)
    frames_rejected: Mapped[int] = mapped_column(BigInteger)
    commands_applied: Mapped[int] = mapped_column(BigInteger)
    commands_failed: Mapped[int] = mapped_column(BigInteger)


class NodeKeyRow(Base):
    """A public key a node proves possession of; ``retired_at`` set once rotated away."""

    __tablename__ = "node_keys"

    public_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class NodeRegistrationTokenRow(Base):
    """A one-time registration token, by its SHA-256 (the token itself is never stored)."""

    __tablename__ = "node_registration_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(32))
    node_name: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    node_id: Mapped[str | None] = mapped_column(String(32))


class NodeCommandRow(Base):
    __tablename__ = "node_commands"
    __table_args__ = (
        Index("ix_node_commands_node_state", "node_id", "state"),
        # The link hub's sweep: the due commands of all nodes, read by state and time.
        Index("ix_node_commands_due", "state", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[str | None] = mapped_column(String(32), index=True)
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)  # JSON object
    state: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retries: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    durable_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    detail: Mapped[str | None] = mapped_column(String(500))
    result: Mapped[str | None] = mapped_column(Text)  # JSON object


class NodeMeterRow(Base):
    """A meter whose signed batches the node relays; a meter sits behind one node."""

    __tablename__ = "node_meters"

    meter_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(32), index=True)
    attached_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditLogRow(Base):
    """One audit entry; rows are only ever inserted (see :mod:`wattx.domain.audit`)."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(64))
    before: Mapped[str | None] = mapped_column(Text)  # JSON
    after: Mapped[str | None] = mapped_column(Text)  # JSON
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHeadRow(Base):
    """The newest entry of the chain (one row, id 1): what appends lock and verification ends at."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
