"""Long lists cut into pieces for statements that bind a parameter per item (a multi-row
``VALUES``, an ``IN``): SQLite and PostgreSQL limit how many parameters one statement
takes."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")

ITEMS_PER_STATEMENT = 1_000
"""Rows or ids per statement: well below SQLite's and PostgreSQL's parameter limits."""


def chunks(items: list[T], size: int = ITEMS_PER_STATEMENT) -> list[list[T]]:
    """``items`` in order, ``size`` at a time (the last piece shorter)."""
    return [items[start : start + size] for start in range(0, len(items), size)]
