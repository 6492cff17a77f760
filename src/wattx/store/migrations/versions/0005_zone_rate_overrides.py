"""Zone-rate overrides: the operator's wheeling charge and loss for one zone pair.

Revision ID: 0005
Revises: 0004

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Upgrade schema."""
    # One row per direction (seller zone, buyer zone); a pair without a row
    # uses the computed default of the zone-rate table.
    op.create_table(
        "zone_rate_overrides",
        sa.Column("seller_zone", sa.String(length=40), nullable=False),
        sa.Column("buyer_zone", sa.String(length=40), nullable=False),
        sa.Column("wheeling_per_kwh", sa.BigInteger(), nullable=False),
        sa.Column("loss_bps", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(length=32), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("seller_zone", "buyer_zone"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("zone_rate_overrides")
