"""A delivery keeps its trade's buyer, seller and ``seq``, with an index of each party's
deliveries in trade order, so that a participant's page of deliveries is read down those
instead of going through every trade ever made (docs/operations.md, "Reads that grew with
the history"). Filled here from the trades.

Revision ID: 0033
Revises: 0032

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0033"
down_revision: str | Sequence[str] | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("buyer", sa.String(length=32), "buyer"),
    ("seller", sa.String(length=32), "seller"),
    ("trade_seq", sa.BigInteger(), "seq"),
)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("trade_deliveries") as batch:
        for name, kind, _ in _COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    for name, _, source in _COLUMNS:
        op.execute(
            f"UPDATE trade_deliveries SET {name} ="
            f" (SELECT t.{source} FROM trades t WHERE t.id = trade_deliveries.trade_id)"
        )
    with op.batch_alter_table("trade_deliveries") as batch:
        for name, kind, _ in _COLUMNS:
            batch.alter_column(name, existing_type=kind, nullable=False)
    op.create_index("ix_trade_deliveries_buyer_seq", "trade_deliveries", ["buyer", "trade_seq"])
    op.create_index("ix_trade_deliveries_seller_seq", "trade_deliveries", ["seller", "trade_seq"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_trade_deliveries_seller_seq", table_name="trade_deliveries")
    op.drop_index("ix_trade_deliveries_buyer_seq", table_name="trade_deliveries")
    with op.batch_alter_table("trade_deliveries") as batch:
        for name, _, _ in reversed(_COLUMNS):
            batch.drop_column(name)
