"""SQLite's query plans of the statements a piece of code runs: a read that a page or a
periodic job makes must search an index, not scan or sort a table that grows with the
history. Record the statements while the code runs, then ask SQLite how it would run each
(``EXPLAIN QUERY PLAN``) on the same database file."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

Statement = tuple[str, tuple[object, ...]]
"""A statement's text and its parameters, as the driver got them."""


def selects(statement: str) -> bool:
    return statement.lstrip().upper().startswith("SELECT")


@contextmanager
def recorded(
    engines: Iterable[AsyncEngine], wanted: Callable[[str], bool] = selects
) -> Iterator[list[Statement]]:
    """The ``wanted`` statements the engines run inside the block, in order."""
    statements: list[Statement] = []

    def record(
        _conn: object, _cursor: object, statement: str, params: object, *_rest: object
    ) -> None:
        if wanted(statement):
            assert isinstance(params, tuple), params  # one execution, not a batch
            statements.append((statement, params))

    targets = [engine.sync_engine for engine in set(engines)]
    for target in targets:
        event.listen(target, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for target in targets:
            event.remove(target, "before_cursor_execute", record)


def query_plans(path: Path | str, statements: Iterable[Statement]) -> list[list[str]]:
    """Each statement's plan on the SQLite database at ``path``: its steps' details."""
    with sqlite3.connect(path) as conn:
        return [
            [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {statement}", params)]
            for statement, params in statements
        ]
