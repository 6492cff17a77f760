"""The mint outbox: intents written before their oracle batch is sent.

Revision ID: 0008
Revises: 0006

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "mint_intents",
        sa.Column("id", sa.String(length=66), nullable=False),
        sa.Column("period", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("pending_slot", sa.Integer(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("total_wh", sa.BigInteger(), nullable=False),
        sa.Column("start_block", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pending_slot"),
    )
    op.create_index("ix_mint_intents_status", "mint_intents", ["status"])
    with op.batch_alter_table("chain_mints") as batch:
        batch.add_column(sa.Column("intent_id", sa.String(length=66), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("chain_mints") as batch:
        batch.drop_column("intent_id")
    op.drop_index("ix_mint_intents_status", table_name="mint_intents")
    op.drop_table("mint_intents")
