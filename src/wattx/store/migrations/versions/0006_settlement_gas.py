"""Gas used by each settlement transaction.

Revision ID: 0006
Revises: 0005

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("settlement_outbox") as batch:
        # NULL until confirmed, and for a settlement adopted from the chain's event
        # after a crash (the event does not carry the gas).
        batch.add_column(sa.Column("gas_used", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("settlement_outbox") as batch:
        batch.drop_column("gas_used")
