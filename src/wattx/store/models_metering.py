"""Tables of the metering area: readings, last-reading pointers, alerts, per-epoch energy.

Created by migration ``0002``. On PostgreSQL ``readings`` is range-partitioned
by month on ``ts`` (so ``ts`` is part of its primary key); the model describes
the parent table, which is all queries need.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from wattx.store.models import Base
from wattx.store.types import UTCDateTime


class ReadingRow(Base):
    """A stored reading, accepted or quarantined. ``digest`` is the hex reading digest."""

    __tablename__ = "readings"
    __table_args__ = (
        Index("ix_readings_meter_ts", "meter_id", "ts"),
        # Only quarantined readings are looked up by status: the others are not indexed.
        Index(
            "ix_readings_quarantined_received",
            "received_at",
            postgresql_where=text("status = 'quarantined'"),
            sqlite_where=text("status = 'quarantined'"),
        ),
    )

    meter_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    import_wh: Mapped[int] = mapped_column(BigInteger)
    export_wh: Mapped[int] = mapped_column(BigInteger)
    power_w: Mapped[int | None] = mapped_column(BigInteger)
    voltage_mv: Mapped[int | None] = mapped_column(BigInteger)
    frequency_millihz: Mapped[int | None] = mapped_column(BigInteger)
    soc_permille: Mapped[int | None] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12))
    quarantine_reason: Mapped[str | None] = mapped_column(String(40))
    quarantine_detail: Mapped[str | None] = mapped_column(Text)
    via: Mapped[str] = mapped_column(String(10))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # An operator's decision on a quarantined reading: who and when.
    reviewed_by: Mapped[str | None] = mapped_column(String(32), default=None)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class MeterLastReadingRow(Base):
    """A meter's newest stored reading: what the next batch is validated against."""

    __tablename__ = "meter_last_readings"

    meter_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    import_wh: Mapped[int] = mapped_column(BigInteger)
    export_wh: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MeterAlertRow(Base):
    """An alert for the operator: a grid-quality alert raised by a reading (voltage or
    frequency out of band), or a service alert (a settlement that failed for good), whose
    reading fields are NULL and which names its ``epoch_id`` and says why in ``detail``."""

    __tablename__ = "meter_alerts"
    __table_args__ = (
        Index("ix_meter_alerts_meter_raised", "meter_id", "raised_at"),
        # The alerts page, newest first (all, or of one kind): read from these indexes' end
        # instead of sorting every alert ever raised.
        Index("ix_meter_alerts_raised", "raised_at", "id"),
        Index("ix_meter_alerts_kind_raised", "kind", "raised_at", "id"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    meter_id: Mapped[str | None] = mapped_column(String(32))
    seq: Mapped[int | None] = mapped_column(BigInteger)
    reading_ts: Mapped[datetime | None] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(40))
    value: Mapped[int | None] = mapped_column(BigInteger)
    low: Mapped[int | None] = mapped_column(BigInteger)
    high: Mapped[int | None] = mapped_column(BigInteger)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    epoch_id: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[str | None] = mapped_column(Text)


class MeterEpochEnergyRow(Base):
    """A meter's energy in one delivery epoch.

    ``import_wh`` and ``export_wh`` count every stored interval, quarantined
    ones included; ``verified_export_wh`` only intervals ending in an accepted
    reading. Minting reads ``verified_export_wh``.
    """

    __tablename__ = "meter_epoch_energy"

    meter_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    epoch_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    import_wh: Mapped[int] = mapped_column(BigInteger)
    export_wh: Mapped[int] = mapped_column(BigInteger)
    verified_export_wh: Mapped[int] = mapped_column(BigInteger)
