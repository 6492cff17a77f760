"""A partial index of the trades whose epoch's batch is not in the settlement outbox yet,
so that a start or a new market writer finds the epochs with trades and no closure among
those instead of every trade ever made (docs/operations.md, "Reads that grew with the
history").

Revision ID: 0032
Revises: 0031

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0032"
down_revision: str | Sequence[str] | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSETTLED = "settlement_status IS NULL"


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index(
        "ix_trades_unsettled",
        "trades",
        ["epoch_id"],
        sqlite_where=sa.text(UNSETTLED),
        postgresql_where=sa.text(UNSETTLED),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_trades_unsettled", table_name="trades")
