"""Metering: readings (time-partitioned on PostgreSQL), last-reading pointers, alerts,
per-epoch meter energy.

Revision ID: 0002
Revises: 0001

On PostgreSQL ``readings`` is range-partitioned by month on ``ts``. The
partition key must be part of the primary key, hence ``(meter_id, seq, ts)``;
the service keeps ``(meter_id, seq)`` unique itself under the meter's row
lock. A default partition takes any reading whose month has no partition yet,
so an insert never fails for want of one; the service creates the month
partitions ahead of time (``wattx.store.readings.ensure_month_partition``).
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_READING_COLUMNS = """
    meter_id VARCHAR(32) NOT NULL,
    seq BIGINT NOT NULL,
    ts TIMESTAMP WITH TIME ZONE NOT NULL,
    import_wh BIGINT NOT NULL,
    export_wh BIGINT NOT NULL,
    power_w BIGINT,
    voltage_mv BIGINT,
    frequency_millihz BIGINT,
    soc_permille INTEGER,
    digest VARCHAR(64) NOT NULL,
    status VARCHAR(12) NOT NULL,
    quarantine_reason VARCHAR(40),
    quarantine_detail TEXT,
    via VARCHAR(10) NOT NULL,
    received_at TIMESTAMP WITH TIME ZONE NOT NULL,
    PRIMARY KEY (meter_id, seq, ts)
"""


def upgrade() -> None:
    """Upgrade schema."""
    if op.get_context().dialect.name == "postgresql":
        _create_partitioned_readings()
    else:
        _create_plain_readings()

    op.create_table(
        "meter_last_readings",
        sa.Column("meter_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("import_wh", sa.BigInteger(), nullable=False),
        sa.Column("export_wh", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("meter_id"),
    )
    op.create_table(
        "meter_alerts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("meter_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("reading_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("low", sa.BigInteger(), nullable=False),
        sa.Column("high", sa.BigInteger(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_meter_alerts_meter_raised", "meter_alerts", ["meter_id", "raised_at"])
    op.create_table(
        "meter_epoch_energy",
        sa.Column("meter_id", sa.String(length=32), nullable=False),
        sa.Column("epoch_id", sa.BigInteger(), nullable=False),
        sa.Column("import_wh", sa.BigInteger(), nullable=False),
        sa.Column("export_wh", sa.BigInteger(), nullable=False),
        sa.Column("verified_export_wh", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("meter_id", "epoch_id"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("meter_epoch_energy")
    op.drop_index("ix_meter_alerts_meter_raised", table_name="meter_alerts")
    op.drop_table("meter_alerts")
    op.drop_table("meter_last_readings")
    # On PostgreSQL dropping the parent drops every partition with it.
    op.drop_table("readings")


def _create_plain_readings() -> None:
    op.execute(f"CREATE TABLE readings ({_READING_COLUMNS})")
    op.create_index("ix_readings_meter_ts", "readings", ["meter_id", "ts"])
    op.create_index("ix_readings_status_received", "readings", ["status", "received_at"])


def _create_partitioned_readings() -> None:
    op.execute(f"CREATE TABLE readings ({_READING_COLUMNS}) PARTITION BY RANGE (ts)")
    op.execute("CREATE TABLE readings_default PARTITION OF readings DEFAULT")
    op.create_index("ix_readings_meter_ts", "readings", ["meter_id", "ts"])
    op.create_index("ix_readings_status_received", "readings", ["status", "received_at"])
    op.create_index("ix_readings_ts_brin", "readings", ["ts"], postgresql_using="brin")
    # This month and the next exist from the start; the service adds later ones.
    now = datetime.now(UTC)
    this_month = (now.year, now.month)
    next_month = (now.year + now.month // 12, now.month % 12 + 1)
    for year, month in (this_month, next_month):
        _create_month_partition(year, month)


def _create_month_partition(year: int, month: int) -> None:
    following = (year + month // 12, month % 12 + 1)
    op.execute(
        f"CREATE TABLE readings_p{year:04d}{month:02d} PARTITION OF readings "
        f"FOR VALUES FROM ('{year:04d}-{month:02d}-01 00:00:00+00') "
        f"TO ('{following[0]:04d}-{following[1]:02d}-01 00:00:00+00')"
    )
