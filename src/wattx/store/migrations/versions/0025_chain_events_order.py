"""An index of the chain events in chain order, so that a page of the public ledger's
transactions, newest first, reads that page instead of sorting every event indexed
(docs/operations.md, "Reads that grew with the history").

Revision ID: 0025
Revises: 0024

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0025"
down_revision: str | Sequence[str] | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index("ix_chain_events_block_log", "chain_events", ["block_number", "log_index"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_chain_events_block_log", table_name="chain_events")
