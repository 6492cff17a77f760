"""Governance: the off-chain fields of proposals made through the service, and the
parameter set each epoch runs under.

Revision ID: 0012
Revises: 0011

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "governance_proposals",
        sa.Column("proposal_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("proposer_id", sa.String(32), nullable=False),
        sa.Column("parameter", sa.String(64), nullable=False),
        sa.Column("new_value", sa.BigInteger(), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "parameter_sets",
        sa.Column("from_epoch", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("values_json", sa.Text(), nullable=False),
        sa.Column("proposal_id", sa.BigInteger(), nullable=True, unique=True),
        sa.Column("tx_hash", sa.String(66), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("parameter_sets")
    op.drop_table("governance_proposals")
