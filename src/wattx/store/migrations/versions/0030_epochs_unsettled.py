"""A partial index of the epochs still to settle (closed, with trades, no settlement
status yet), so that the settlement worker's round reads those instead of every epoch
ever closed (docs/operations.md, "Reads that grew with the history"). Epochs closed
before ``trade_count`` counted continuous trades say 0 though they have trades: they are
counted here, so that the index holds them; epochs (and trades) whose batch was in the
outbox before migration ``0004`` get the status the outbox gives them, so that it does
not.

Revision ID: 0030
Revises: 0029

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0030"
down_revision: str | Sequence[str] | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSETTLED = "settlement_status IS NULL AND trade_count > 0"


def upgrade() -> None:
    """Upgrade schema."""
    # Batches written to the outbox before migration 0004 left their epochs (and trades)
    # without a settlement status; the index must not hold them as still to settle.
    for table, epoch in (("epochs", "epochs.id"), ("trades", "trades.epoch_id")):
        op.execute(
            f"UPDATE {table} SET settlement_status = (SELECT CASE o.status"
            f" WHEN 'confirmed' THEN 'settled' ELSE o.status END"
            f" FROM settlement_outbox o WHERE o.epoch_id = {epoch}),"
            f" settlement_tx_hash = coalesce(settlement_tx_hash, (SELECT o.tx_hash"
            f" FROM settlement_outbox o WHERE o.epoch_id = {epoch} AND o.status = 'confirmed'))"
            f" WHERE settlement_status IS NULL"
            f" AND EXISTS (SELECT 1 FROM settlement_outbox o WHERE o.epoch_id = {epoch})"
        )
    op.execute(
        "UPDATE epochs SET trade_count ="
        " (SELECT count(*) FROM trades WHERE trades.epoch_id = epochs.id)"
        " WHERE trade_count = 0"
        " AND EXISTS (SELECT 1 FROM trades WHERE trades.epoch_id = epochs.id)"
    )
    op.create_index(
        "ix_epochs_unsettled",
        "epochs",
        ["id"],
        sqlite_where=sa.text(UNSETTLED),
        postgresql_where=sa.text(UNSETTLED),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_epochs_unsettled", table_name="epochs")
