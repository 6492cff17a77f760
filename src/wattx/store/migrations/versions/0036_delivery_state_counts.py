"""Running counts of the deliveries in each state (``delivery_state_counts``), kept in the
transactions that create deliveries or move them, so that the operator's deliveries page
reads a row per state instead of counting every delivery ever made (docs/operations.md,
"Reads that grew with the history"). Filled here from the deliveries made so far.

Revision ID: 0036
Revises: 0035

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0036"
down_revision: str | Sequence[str] | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "delivery_state_counts",
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("state"),
    )
    op.execute(
        "INSERT INTO delivery_state_counts (state, count)"
        " SELECT state, count(*) FROM trade_deliveries GROUP BY state"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("delivery_state_counts")
