"""Deposit requests: a participant's payment to the operator, awaiting approval.

Revision ID: 0018
Revises: 0017

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "deposit_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("reference", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("decided_at", _TS, nullable=True),
        sa.Column("decided_by", sa.String(32), nullable=True),
    )
    op.create_index("ix_deposit_requests_user", "deposit_requests", ["user_id"])
    op.create_index("ix_deposit_requests_status", "deposit_requests", ["status"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_deposit_requests_status", "deposit_requests")
    op.drop_index("ix_deposit_requests_user", "deposit_requests")
    op.drop_table("deposit_requests")
