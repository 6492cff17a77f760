"""A battery's day-ahead schedule, which caps what delivery plans ask of it.

Revision ID: 0017
Revises: 0016

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("devices") as batch:
        batch.add_column(sa.Column("schedule", sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("schedule")
