"""Settlement in the service: chain accounts, registrations, outbox, mints, retirements,
indexed events.

Revision ID: 0003
Revises: 0002

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "chain_accounts",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("key_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("user_id"),
        sa.UniqueConstraint("address"),
    )
    op.create_table(
        "chain_registrations",
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.PrimaryKeyConstraint("kind", "key"),
    )
    op.create_table(
        "settlement_outbox",
        sa.Column("epoch_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("merkle_root", sa.String(length=66), nullable=False),
        sa.Column("trade_count", sa.Integer(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("volume_wh", sa.BigInteger(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("fees", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TS, nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("confirmed_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("epoch_id"),
    )
    op.create_index(
        "ix_settlement_outbox_status", "settlement_outbox", ["status", "next_attempt_at"]
    )
    op.create_table(
        "chain_mints",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("meter_id", sa.String(length=32), nullable=False),
        sa.Column("epoch_id", sa.BigInteger(), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("wh", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("meter_id", "epoch_id", name="uq_chain_mints_meter_epoch"),
    )
    op.create_index("ix_chain_mints_owner_id", "chain_mints", ["owner_id"])
    op.create_table(
        "mint_watermarks",
        sa.Column("meter_id", sa.String(length=32), nullable=False),
        sa.Column("last_mint_epoch", sa.BigInteger(), nullable=False),
        sa.Column("carried_wh", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("meter_id"),
    )
    op.create_table(
        "token_retirements",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("wh", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_token_retirements_user_id", "token_retirements", ["user_id"])
    op.create_table(
        "chain_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("contract", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("args", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tx_hash", "log_index", name="uq_chain_events_tx_log"),
    )
    op.create_index("ix_chain_events_name_block", "chain_events", ["name", "block_number"])
    op.create_table(
        "indexer_progress",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("next_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("indexer_progress")
    op.drop_index("ix_chain_events_name_block", table_name="chain_events")
    op.drop_table("chain_events")
    op.drop_index("ix_token_retirements_user_id", table_name="token_retirements")
    op.drop_table("token_retirements")
    op.drop_table("mint_watermarks")
    op.drop_index("ix_chain_mints_owner_id", table_name="chain_mints")
    op.drop_table("chain_mints")
    op.drop_index("ix_settlement_outbox_status", table_name="settlement_outbox")
    op.drop_table("settlement_outbox")
    op.drop_table("chain_registrations")
    op.drop_table("chain_accounts")
