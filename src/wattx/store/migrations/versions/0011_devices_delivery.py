"""Devices, physical trades' delivery and device commands.

Revision ID: 0011
Revises: 0010

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "devices",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.String(32), nullable=False),
        sa.Column("meter_id", sa.String(32), nullable=False),
        sa.Column("node_id", sa.String(32), nullable=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("protocol", sa.String(20), nullable=False),
        sa.Column("rated_power_w", sa.BigInteger(), nullable=False),
        sa.Column("capacity_wh", sa.BigInteger(), nullable=False),
        sa.Column("reserve_wh", sa.BigInteger(), nullable=False),
        sa.Column("soc_wh", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_devices_owner_id", "devices", ["owner_id"])
    op.create_index("ix_devices_meter_id", "devices", ["meter_id"])
    op.create_table(
        "trade_deliveries",
        sa.Column("trade_id", sa.String(32), primary_key=True),
        sa.Column("epoch_id", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("contracted_wh", sa.BigInteger(), nullable=False),
        sa.Column("delivered_wh", sa.BigInteger(), nullable=True),
        sa.Column("refund", sa.BigInteger(), nullable=True),
        sa.Column("imbalance_charge", sa.BigInteger(), nullable=True),
        sa.Column("seller_export_wh", sa.BigInteger(), nullable=True),
        sa.Column("buyer_import_wh", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_index("ix_trade_deliveries_epoch", "trade_deliveries", ["epoch_id"])
    op.create_table(
        "device_commands",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("trade_id", sa.String(32), nullable=True),
        sa.Column("node_command_id", sa.String(32), nullable=True),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("issued_at", _TS, nullable=False),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("acked_at", _TS, nullable=True),
        sa.Column("detail", sa.String(200), nullable=True),
    )
    op.create_index("ix_device_commands_device_id", "device_commands", ["device_id"])
    op.create_index("ix_device_commands_trade_id", "device_commands", ["trade_id"])
    op.create_index("ix_device_commands_status", "device_commands", ["status", "expires_at"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("device_commands")
    op.drop_table("trade_deliveries")
    op.drop_table("devices")
