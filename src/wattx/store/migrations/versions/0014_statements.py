"""The balance journal (ledger_entries) and the tariff history (zone_tariffs).

Existing holdings become one ``opening_balance`` entry each, dated when the
migration runs; each existing zone's tariff is taken as in force since the
zone was created.

Revision ID: 0014
Revises: 0013

"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "ledger_entries",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(32), nullable=False),
        sa.Column("asset", sa.String(10), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("ref", sa.String(66), nullable=True),
        sa.Column("at", _TS, nullable=False),
    )
    op.create_index("ix_ledger_entries_account_at", "ledger_entries", ["account_id", "at"])
    op.create_table(
        "zone_tariffs",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("zone_id", sa.String(40), nullable=False),
        sa.Column("effective_from", _TS, nullable=False),
        sa.Column("bands", sa.Text(), nullable=False),
    )
    op.create_index("ix_zone_tariffs_zone_from", "zone_tariffs", ["zone_id", "effective_from"])
    bind = op.get_bind()
    now = datetime.now(UTC)
    # SQLite keeps naive UTC text in SQLAlchemy's format (see store.types.UTCDateTime).
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f") if bind.dialect.name == "sqlite" else now
    bind.execute(
        sa.text(
            "INSERT INTO ledger_entries (account_id, asset, amount, kind, at) "
            "SELECT account_id, asset, free + locked, 'opening_balance', :at FROM balances "
            "WHERE free + locked <> 0"
        ),
        {"at": stamp},
    )
    bind.execute(
        sa.text(
            "INSERT INTO zone_tariffs (zone_id, effective_from, bands) "
            "SELECT id, created_at, tariff_bands FROM zones"
        )
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_zone_tariffs_zone_from", table_name="zone_tariffs")
    op.drop_table("zone_tariffs")
    op.drop_index("ix_ledger_entries_account_at", table_name="ledger_entries")
    op.drop_table("ledger_entries")
