"""The trades' buyer and seller indexes in seq order, so that a party's page of trades,
newest first, reads that page instead of sorting every trade the party ever made
(docs/operations.md, "Reads that grew with the history").

Revision ID: 0024
Revises: 0023

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0024"
down_revision: str | Sequence[str] | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    for side in ("buyer", "seller"):
        op.create_index(f"ix_trades_{side}_seq", "trades", [side, "seq"])
        op.drop_index(f"ix_trades_{side}", table_name="trades")


def downgrade() -> None:
    """Downgrade schema."""
    for side in ("buyer", "seller"):
        op.create_index(f"ix_trades_{side}", "trades", [side])
        op.drop_index(f"ix_trades_{side}_seq", table_name="trades")
