"""An index of the trade deliveries by state and epoch, so that the delivery sweep (every
chain-worker round) reads the live deliveries instead of every delivery ever made
(docs/operations.md, "Reads that grew with the history").

Revision ID: 0023
Revises: 0022

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0023"
down_revision: str | Sequence[str] | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index("ix_trade_deliveries_state_epoch", "trade_deliveries", ["state", "epoch_id"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_trade_deliveries_state_epoch", table_name="trade_deliveries")
