"""An index holding what the public ledger's overview sums of the confirmed settlements
(status, volume, value, fees), so that the sum reads the index alone instead of every
outbox row with its batch payload (docs/operations.md, "Reads that grew with the
history").

Revision ID: 0028
Revises: 0027

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0028"
down_revision: str | Sequence[str] | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index(
        "ix_settlement_outbox_totals",
        "settlement_outbox",
        ["status", "volume_wh", "value", "fees"],
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_settlement_outbox_totals", table_name="settlement_outbox")
