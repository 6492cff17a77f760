"""The chain-in-the-service fixtures (embedded chain, SQLite and PostgreSQL)."""

from __future__ import annotations

from chain_service.conftest import (
    api,
    app,
    chain,
    clock,
    database_url,
    empty_url,
    pg_url,
    settings,
    state,
)

__all__ = [
    "api",
    "app",
    "chain",
    "clock",
    "database_url",
    "empty_url",
    "pg_url",
    "settings",
    "state",
]
