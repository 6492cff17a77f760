"""Node incentives: per-period node activity (the durable heartbeat aggregate), the
periods reported on chain and the slashes sent.

Revision ID: 0016
Revises: 0015

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "node_activity",
        sa.Column("node_id", sa.String(32), primary_key=True),
        sa.Column("period", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("interval_s", sa.Integer(), nullable=False),
        sa.Column("up_slots", sa.Integer(), nullable=False),
        sa.Column("last_slot", sa.Integer(), nullable=False),
        sa.Column("readings", sa.BigInteger(), nullable=False),
        sa.Column("commands_done", sa.BigInteger(), nullable=False),
        sa.Column("commands_failed", sa.BigInteger(), nullable=False),
        sa.Column("tampered_batches", sa.BigInteger(), nullable=False),
        sa.Column("reward", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_node_activity_period", "node_activity", ["period"])
    op.create_table(
        "incentive_periods",
        sa.Column("period", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.Column("paid", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("reported_at", _TS, nullable=False),
    )
    op.create_table(
        "incentive_slashes",
        sa.Column("slash_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("node_id", sa.String(32), nullable=False),
        sa.Column("period", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("settled_at", _TS, nullable=True),
    )
    op.create_index("ix_incentive_slashes_node_id", "incentive_slashes", ["node_id"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_incentive_slashes_node_id", "incentive_slashes")
    op.drop_table("incentive_slashes")
    op.drop_table("incentive_periods")
    op.drop_index("ix_node_activity_period", "node_activity")
    op.drop_table("node_activity")
