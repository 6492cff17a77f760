"""The index behind the operator's list of quarantined readings holds those readings
only: the index by status and time it replaces held every reading, so each stored
reading wrote an entry that only a quarantined one is ever looked up by
(docs/operations.md, "Readings on one and two replicas").

Revision ID: 0022
Revises: 0021

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0022"
down_revision: str | Sequence[str] | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_QUARANTINED = sa.text("status = 'quarantined'")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index(
        "ix_readings_quarantined_received",
        "readings",
        ["received_at"],
        postgresql_where=_QUARANTINED,
        sqlite_where=_QUARANTINED,
    )
    op.drop_index("ix_readings_status_received", table_name="readings")


def downgrade() -> None:
    """Downgrade schema."""
    op.create_index("ix_readings_status_received", "readings", ["status", "received_at"])
    op.drop_index("ix_readings_quarantined_received", table_name="readings")
