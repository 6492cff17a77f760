"""What a migration's test needs: an empty database on either backend, and Alembic run
on one connection up to a given revision (to fill tables as they were, then migrate)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from sqlalchemy import Connection

from support.pg import asyncpg_url, private_database
from wattx.store.migrate import alembic_config


@contextmanager
def empty_database_url(backend: str, directory: Path) -> Iterator[str]:
    """The URL of a new empty database: a file in ``directory`` (``sqlite``) or a private
    database on the test server (``postgresql``), dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{directory / 'migrated.sqlite3'}"
        return
    with private_database("wattx_mig") as name:
        yield asyncpg_url(name)


def upgrade_to(revision: str) -> Callable[[Connection], None]:
    """For ``AsyncConnection.run_sync``: migrate the connection's database to ``revision``."""

    def run(conn: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, revision)

    return run
