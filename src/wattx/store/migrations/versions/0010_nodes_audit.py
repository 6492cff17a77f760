"""Edge nodes (nodes, keys, registration tokens, commands, meters behind a node)
and the hash-chained audit log.

Revision ID: 0010
Revises: 0006

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "nodes",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("owner_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("health", sa.String(12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_interval_s", sa.Integer(), nullable=False),
        sa.Column("last_heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("link_id", sa.String(32), nullable=True),
        sa.Column("uptime_s", sa.BigInteger(), nullable=True),
        sa.Column("software_version", sa.String(40), nullable=True),
        sa.Column("buffer_depth", sa.BigInteger(), nullable=True),
        sa.Column("device_summary", sa.Text(), nullable=False),
        sa.Column("readings_relayed", sa.BigInteger(), nullable=False),
        sa.Column("batches_rejected", sa.BigInteger(), nullable=False),
        sa.Column("foreign_batches", sa.BigInteger(), nullable=False),
        sa.Column("frames_rejected", sa.BigInteger(), nullable=False),
        sa.Column("commands_applied", sa.BigInteger(), nullable=False),
        sa.Column("commands_failed", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_nodes_owner_id", "nodes", ["owner_id"])
    op.create_table(
        "node_keys",
        sa.Column("public_key", sa.String(64), primary_key=True),
        sa.Column("node_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_node_keys_node_id", "node_keys", ["node_id"])
    op.create_table(
        "node_registration_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("owner_id", sa.String(32), nullable=False),
        sa.Column("node_name", sa.String(100), nullable=False),
        sa.Column("created_by", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("node_id", sa.String(32), nullable=True),
    )
    op.create_table(
        "node_commands",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("node_id", sa.String(32), nullable=False),
        sa.Column("job_id", sa.String(32), nullable=True),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("durable_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detail", sa.String(500), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
    )
    op.create_index("ix_node_commands_node_state", "node_commands", ["node_id", "state"])
    op.create_index("ix_node_commands_job_id", "node_commands", ["job_id"])
    op.create_table(
        "node_meters",
        sa.Column("meter_id", sa.String(32), primary_key=True),
        sa.Column("node_id", sa.String(32), nullable=False),
        sa.Column("attached_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_node_meters_node_id", "node_meters", ["node_id"])
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(100), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    """Downgrade schema."""
    for table in (
        "audit_head",
        "audit_log",
        "node_meters",
        "node_commands",
        "node_registration_tokens",
        "node_keys",
        "nodes",
    ):
        op.drop_table(table)
