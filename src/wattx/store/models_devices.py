"""Tables of devices and physical delivery: devices, each physical trade's delivery,
and device commands (created by migration ``0011``), and each seller's measured
deliveries summed (migration ``0027``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from wattx.store.models import Base
from wattx.store.types import UTCDateTime


class DeviceRow(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(32), index=True)
    meter_id: Mapped[str] = mapped_column(String(32), index=True)
    node_id: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))
    protocol: Mapped[str] = mapped_column(String(20))
    rated_power_w: Mapped[int] = mapped_column(BigInteger)
    capacity_wh: Mapped[int] = mapped_column(BigInteger)
    reserve_wh: Mapped[int] = mapped_column(BigInteger)
    soc_wh: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(12))  # active | at_risk | removed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    schedule: Mapped[str | None] = mapped_column(Text, default=None)
    """A battery's day-ahead schedule (JSON: ``{starts_at, slot_s, slots: [[charge_wh,
    discharge_wh, soc_wh], ...]}``), or null."""


class TradeDeliveryRow(Base):
    """A physical trade's delivery state and, once measured, its outcome."""

    __tablename__ = "trade_deliveries"
    __table_args__ = (
        Index("ix_trade_deliveries_epoch", "epoch_id"),
        # The live deliveries (open, funds locked) of every sweep, among all ever made.
        Index("ix_trade_deliveries_state_epoch", "state", "epoch_id"),
        # A party's deliveries in trade order, each side down its own index (a page of
        # them joined to the trades went through every trade ever made).
        Index("ix_trade_deliveries_buyer_seq", "buyer", "trade_seq"),
        Index("ix_trade_deliveries_seller_seq", "seller", "trade_seq"),
    )

    trade_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    epoch_id: Mapped[int] = mapped_column(BigInteger)
    buyer: Mapped[str] = mapped_column(String(32))
    seller: Mapped[str] = mapped_column(String(32))
    trade_seq: Mapped[int] = mapped_column(BigInteger)
    """The trade's buyer, seller and ``seq``, as the trade has them (they never change)."""
    state: Mapped[str] = mapped_column(String(16))
    contracted_wh: Mapped[int] = mapped_column(BigInteger)
    delivered_wh: Mapped[int | None] = mapped_column(BigInteger)
    refund: Mapped[int | None] = mapped_column(BigInteger)
    imbalance_charge: Mapped[int | None] = mapped_column(BigInteger)
    seller_export_wh: Mapped[int | None] = mapped_column(BigInteger)
    buyer_import_wh: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DeliveryStateCountRow(Base):
    """How many deliveries are in one state, counted as they are created and move
    (:mod:`wattx.store.delivery_states`), so the operator's page does not count every
    delivery ever made."""

    __tablename__ = "delivery_state_counts"

    state: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)


class SellerDeliveryTotalRow(Base):
    """A seller's measured deliveries from one zone, summed as each is measured.

    The reference price's reliability reads these (a row per seller and zone) instead of
    summing every delivery ever measured, on every quote. Kept in the transaction that
    measures the deliveries (``TradeDeliveryRow.delivered_wh`` set), so the two agree.
    """

    __tablename__ = "seller_delivery_totals"
    __table_args__ = (Index("ix_seller_delivery_totals_zone", "zone"),)

    seller: Mapped[str] = mapped_column(String(32), primary_key=True)
    zone: Mapped[str] = mapped_column(String(40), primary_key=True)
    """The seller's zone in those trades (``TradeRow.seller_zone``)."""
    deliveries: Mapped[int] = mapped_column(BigInteger)
    delivered_wh: Mapped[int] = mapped_column(BigInteger)
    contracted_wh: Mapped[int] = mapped_column(BigInteger)


class DeviceCommandRow(Base):
    """A command to a device (lock, unlock, transfer.start, transfer.stop, schedule)."""

    __tablename__ = "device_commands"
    __table_args__ = (Index("ix_device_commands_status", "status", "expires_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(32), index=True)
    trade_id: Mapped[str | None] = mapped_column(String(32), index=True)
    node_command_id: Mapped[str | None] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(20))
    payload: Mapped[str] = mapped_column(Text)  # JSON object
    status: Mapped[str] = mapped_column(String(12))  # sent | acked | failed | expired
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    detail: Mapped[str | None] = mapped_column(String(200))
