"""Storage: SQLAlchemy models, repositories, the unit of work and migrations.

SQLite (one file, WAL, ``BEGIN IMMEDIATE`` for writes) by default; PostgreSQL
through ``WATTX_DATABASE_URL`` with ``SELECT ... FOR UPDATE`` on the rows a
write reads before changing.
"""

from wattx.store.db import Database
from wattx.store.migrate import is_at_head, upgrade_to_head

__all__ = ["Database", "is_at_head", "upgrade_to_head"]
