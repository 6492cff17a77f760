"""Drop the operator's per-pair zone-rate overrides: every pair's rate now comes from the
governed relation rates of the epoch's parameter set (docs/market.md).

Revision ID: 0019
Revises: 0018

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.drop_table("zone_rate_overrides")


def downgrade() -> None:
    """Downgrade schema (the table comes back empty: the overrides are not kept)."""
    op.create_table(
        "zone_rate_overrides",
        sa.Column("seller_zone", sa.String(length=40), nullable=False),
        sa.Column("buyer_zone", sa.String(length=40), nullable=False),
        sa.Column("wheeling_per_kwh", sa.BigInteger(), nullable=False),
        sa.Column("loss_bps", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("seller_zone", "buyer_zone"),
    )
