"""Running totals of the confirmed settlements (epochs, volume, value, fees) in
``ledger_totals``, counted in or out in the transaction that confirms or reopens a
settlement, so that the public ledger's overview reads four rows instead of summing every
settlement ever confirmed (docs/operations.md, "Reads that grew with the history"). Filled
here from the settlements confirmed so far; the index that sum was read from goes.

Revision ID: 0035
Revises: 0034

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0035"
down_revision: str | Sequence[str] | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TOTALS = {
    "settled_epochs": "count(*)",
    "settled_volume_wh": "coalesce(sum(volume_wh), 0)",
    "settled_value": "coalesce(sum(value), 0)",
    "settled_fees": "coalesce(sum(fees), 0)",
}


def upgrade() -> None:
    """Upgrade schema."""
    for name, total in _TOTALS.items():
        op.execute(
            sa.text(
                f"INSERT INTO ledger_totals (name, amount) SELECT :name, {total}"
                " FROM settlement_outbox WHERE status = 'confirmed'"
            ).bindparams(name=name)
        )
    op.drop_index("ix_settlement_outbox_totals", table_name="settlement_outbox")


def downgrade() -> None:
    """Downgrade schema."""
    op.create_index(
        "ix_settlement_outbox_totals",
        "settlement_outbox",
        ["status", "volume_wh", "value", "fees"],
    )
    op.execute(
        sa.text("DELETE FROM ledger_totals WHERE name IN :names").bindparams(
            sa.bindparam("names", tuple(_TOTALS), expanding=True)
        )
    )
