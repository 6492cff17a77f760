"""Grid tree and congestion: a zone's parent, an epoch's congestion report.

Revision ID: 0013
Revises: 0012

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    # The zone above this one in the grid tree (None: a root, or no tree at all).
    with op.batch_alter_table("zones") as batch:
        batch.add_column(sa.Column("parent", sa.String(length=40), nullable=True))
    # JSON list of link reports (flow, capacity, shadow price, rent) of a coupled
    # auction; None for epochs closed without a grid tree or before this revision.
    with op.batch_alter_table("epochs") as batch:
        batch.add_column(sa.Column("congestion", sa.Text(), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("epochs") as batch:
        batch.drop_column("congestion")
    with op.batch_alter_table("zones") as batch:
        batch.drop_column("parent")
