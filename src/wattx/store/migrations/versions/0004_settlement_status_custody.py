"""Settlement status on trades and epochs, review of quarantined readings, self-custody.

Revision ID: 0004
Revises: 0003

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    """Upgrade schema."""
    for table in ("trades", "epochs"):
        with op.batch_alter_table(table) as batch:
            # NULL until the epoch's batch is in the outbox; then pending, then settled.
            batch.add_column(sa.Column("settlement_status", sa.String(length=12), nullable=True))
            batch.add_column(sa.Column("settlement_tx_hash", sa.String(length=66), nullable=True))
    with op.batch_alter_table("readings") as batch:
        batch.add_column(sa.Column("reviewed_by", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("reviewed_at", _TS, nullable=True))
    with op.batch_alter_table("chain_accounts") as batch:
        batch.add_column(
            sa.Column(
                "custody",
                sa.String(length=10),
                nullable=False,
                server_default="custodial",
            )
        )
        # A self-custody account has no key held by the service.
        batch.alter_column("key_ciphertext", existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("chain_accounts") as batch:
        batch.alter_column("key_ciphertext", existing_type=sa.LargeBinary(), nullable=False)
        batch.drop_column("custody")
    with op.batch_alter_table("readings") as batch:
        batch.drop_column("reviewed_at")
        batch.drop_column("reviewed_by")
    for table in ("epochs", "trades"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("settlement_tx_hash")
            batch.drop_column("settlement_status")
