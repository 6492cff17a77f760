"""Alembic, configured in code so it runs from an installed package (no alembic.ini)."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from wattx.store.db import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def upgrade_to_head(db: Database) -> None:
    """Apply every migration not yet applied, in one transaction."""
    async with db.write_engine.begin() as conn:
        await conn.run_sync(_upgrade)


async def is_at_head(db: Database) -> bool:
    """Whether the database carries exactly the newest migration."""
    async with db.read_engine.connect() as conn:
        current = await conn.run_sync(_current_heads)
    return current == head_revisions()


@functools.cache
def head_revisions() -> frozenset[str]:
    """The newest migration(s) of this installation, read from the scripts once per process
    (they do not change while it runs; reading them takes milliseconds, and the readiness
    probe asks at every call)."""
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def _upgrade(conn: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


def _current_heads(conn: Connection) -> set[str]:
    return set(MigrationContext.configure(conn).get_current_heads())
