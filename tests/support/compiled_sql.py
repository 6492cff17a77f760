"""One compilation of each SQL statement per test process, not one per service.

SQLAlchemy keeps compiled statements per engine, keyed by the engine's dialect object,
and every in-process service a test starts makes engines of its own: each test compiled
every statement it ran anew (a third of the CPU of some modules). Here every engine of
the process that speaks the same dialect with the same driver uses one dialect object —
the first one that connected, so it was initialized against the server — and one cache.
The dialect holds no state of a connection or a database: what it learns when it first
connects (server version, default isolation level) is the same for every database of
the suite's one PostgreSQL server, and for SQLite, the library's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.engine.interfaces import Dialect

_shared: dict[tuple[type[Dialect], str], tuple[Dialect, Any]] = {}


def _initialized(dialect: Dialect) -> bool:
    # Set by the dialect's first connection (``Dialect.initialize``), not before.
    return hasattr(dialect, "default_isolation_level")


def _share(engine: Engine) -> None:
    key = (type(engine.dialect), engine.url.drivername)
    found = _shared.get(key)
    if found is None:
        if _initialized(engine.dialect):
            _shared[key] = (engine.dialect, engine._compiled_cache)
        return
    dialect, cache = found
    if engine.dialect is not dialect:
        engine.dialect = dialect
        engine.pool._dialect = dialect
        engine._compiled_cache = cache


def _on_engine_connect(connection: Any) -> None:
    # From its next connection on, this engine uses the shared dialect and cache (this
    # connection keeps the dialect it was made with).
    _share(connection.engine)


def share_compiled_sql() -> None:
    """From now on, in this process (once is enough; again changes nothing)."""
    if not event.contains(Engine, "engine_connect", _on_engine_connect):
        event.listen(Engine, "engine_connect", _on_engine_connect)
