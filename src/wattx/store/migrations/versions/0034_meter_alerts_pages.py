"""Indexes of the alerts in the order their page shows them (newest first, all of them or
of one kind), so that a page does not sort every alert ever raised (docs/operations.md,
"Reads that grew with the history").

Revision ID: 0034
Revises: 0033

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0034"
down_revision: str | Sequence[str] | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index("ix_meter_alerts_raised", "meter_alerts", ["raised_at", "id"])
    op.create_index("ix_meter_alerts_kind_raised", "meter_alerts", ["kind", "raised_at", "id"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_meter_alerts_kind_raised", table_name="meter_alerts")
    op.drop_index("ix_meter_alerts_raised", table_name="meter_alerts")
