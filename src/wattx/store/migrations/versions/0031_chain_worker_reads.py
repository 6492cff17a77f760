"""Indexes for what every chain-worker round reads, so that a round does not cost more
as the history grows (docs/operations.md, "Reads that grew with the history"): the newest
confirmed settlement and mint intent (whose transactions the round asks the chain about)
and the pending retirements. The mint intents' index on ``status`` alone is a prefix of
the new one.

Revision ID: 0031
Revises: 0030

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0031"
down_revision: str | Sequence[str] | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index(
        "ix_settlement_outbox_newest", "settlement_outbox", ["status", "block_number", "epoch_id"]
    )
    op.create_index("ix_mint_intents_newest", "mint_intents", ["status", "block_number", "id"])
    op.drop_index("ix_mint_intents_status", table_name="mint_intents")
    op.create_index("ix_token_retirements_status", "token_retirements", ["status", "created_at"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_token_retirements_status", table_name="token_retirements")
    op.create_index("ix_mint_intents_status", "mint_intents", ["status"])
    op.drop_index("ix_mint_intents_newest", table_name="mint_intents")
    op.drop_index("ix_settlement_outbox_newest", table_name="settlement_outbox")
