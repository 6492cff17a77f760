"""An index of the node commands by state and next attempt, so that the link hub's sweep
for due commands reads the few due rows instead of probing every linked node
(docs/nodes.md, "Durable commands").

Revision ID: 0021
Revises: 0020

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_index("ix_node_commands_due", "node_commands", ["state", "next_attempt_at"])


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("ix_node_commands_due", table_name="node_commands")
