"""Running totals of the public ledger (``ledger_totals``), the first of them the Wh of
every mint, added to in the transaction that records the mints, so that the overview reads
one row instead of summing every mint ever recorded (docs/operations.md, "Reads that grew
with the history"). Filled here from the mints recorded so far.

Revision ID: 0029
Revises: 0028

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0029"
down_revision: str | Sequence[str] | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "ledger_totals",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.execute(
        "INSERT INTO ledger_totals (name, amount)"
        " SELECT 'minted_wh', coalesce(sum(wh), 0) FROM chain_mints"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("ledger_totals")
