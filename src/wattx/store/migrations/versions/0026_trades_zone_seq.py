"""An index of the trades by zone in seq order, so that a zone's newest trades (its public
page, the reference price's last price) read those instead of walking every trade from the
newest until enough of the zone's turn up: for a zone that has none, all of them
(docs/operations.md, "Reads that grew with the history").

Revision ID: 0026
Revises: 0025

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0026"
down_revision: str | Sequence[str] | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index("ix_trades_zone_seq", "trades", ["zone", "seq"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_trades_zone_seq", table_name="trades")
