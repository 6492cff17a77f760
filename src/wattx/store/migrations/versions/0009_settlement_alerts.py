"""Alerts that no reading raised: a settlement that failed for good.

The alerts list (``meter_alerts``) also carries service alerts: their meter
fields are NULL, ``epoch_id`` names the epoch and ``detail`` says why.

Revision ID: 0009
Revises: 0006

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_READING_COLUMNS = (
    ("meter_id", sa.String(length=32)),
    ("seq", sa.BigInteger()),
    ("reading_ts", sa.DateTime(timezone=True)),
    ("value", sa.BigInteger()),
    ("low", sa.BigInteger()),
    ("high", sa.BigInteger()),
)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("meter_alerts") as batch:
        for name, type_ in _READING_COLUMNS:
            batch.alter_column(name, existing_type=type_, nullable=True)
        batch.add_column(sa.Column("epoch_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("detail", sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    op.execute("DELETE FROM meter_alerts WHERE meter_id IS NULL")
    with op.batch_alter_table("meter_alerts") as batch:
        batch.drop_column("detail")
        batch.drop_column("epoch_id")
        for name, type_ in _READING_COLUMNS:
            batch.alter_column(name, existing_type=type_, nullable=False)
