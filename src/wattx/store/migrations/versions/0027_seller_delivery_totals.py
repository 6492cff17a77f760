"""Each seller's measured deliveries summed per zone, kept as deliveries are measured, so
that the reference price's reliability reads a row per seller instead of summing every
delivery ever measured on every quote (docs/operations.md, "Reads that grew with the
history"). Filled here from the deliveries measured so far.

Revision ID: 0027
Revises: 0026

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0027"
down_revision: str | Sequence[str] | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "seller_delivery_totals",
        sa.Column("seller", sa.String(length=32), nullable=False),
        sa.Column("zone", sa.String(length=40), nullable=False),
        sa.Column("deliveries", sa.BigInteger(), nullable=False),
        sa.Column("delivered_wh", sa.BigInteger(), nullable=False),
        sa.Column("contracted_wh", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("seller", "zone"),
    )
    op.create_index("ix_seller_delivery_totals_zone", "seller_delivery_totals", ["zone"])
    op.execute(
        "INSERT INTO seller_delivery_totals"
        " (seller, zone, deliveries, delivered_wh, contracted_wh)"
        " SELECT t.seller, t.seller_zone, count(*), sum(d.delivered_wh), sum(d.contracted_wh)"
        " FROM trade_deliveries d JOIN trades t ON t.id = d.trade_id"
        " WHERE d.delivered_wh IS NOT NULL"
        " GROUP BY t.seller, t.seller_zone"
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_seller_delivery_totals_zone", table_name="seller_delivery_totals")
    op.drop_table("seller_delivery_totals")
