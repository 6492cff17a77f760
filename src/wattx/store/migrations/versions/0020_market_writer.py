"""The elected market writer's fencing token and the inbox through which replicas that
are not the writer hand it order submissions (docs/operations.md, "Scaling out").

Revision ID: 0020
Revises: 0019

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

_TS = sa.DateTime(timezone=True)

# revision identifiers, used by Alembic.
revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    writer = op.create_table(
        "market_writer",
        sa.Column("scope", sa.String(length=40), nullable=False),
        sa.Column("term", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("since", _TS, nullable=True),
        sa.PrimaryKeyConstraint("scope"),
    )
    op.bulk_insert(writer, [{"scope": "market", "term": 0, "holder": "", "since": None}])
    op.create_table(
        "market_inbox",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("owner_id", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("done_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_market_inbox_status_id", "market_inbox", ["status", "id"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_market_inbox_status_id", table_name="market_inbox")
    op.drop_table("market_inbox")
    op.drop_table("market_writer")
