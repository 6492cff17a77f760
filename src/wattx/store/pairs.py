"""Look-ups of rows by a two-column key, one statement per chunk of pairs.

``WHERE (a, b) IN (VALUES (?, ?), ...)`` reads well, but SQLite (3.40) plans a
row-value ``IN`` over a list as a scan of the whole table; the same filter as
``(a = ? AND b = ?) OR ...`` searches the primary key or a unique index on
``(a, b)``, on SQLite and PostgreSQL alike. The pairs go in chunks of
:data:`PAIRS_PER_STATEMENT`, so the ``OR`` stays well inside SQLite's limit on
an expression's depth (1,000) however many pairs a group has.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, or_
from sqlalchemy.orm import InstrumentedAttribute

PAIRS_PER_STATEMENT = 200


def pair_filters(
    first: InstrumentedAttribute[Any],
    second: InstrumentedAttribute[Any],
    pairs: Sequence[tuple[str, str]],
) -> Iterator[ColumnElement[bool]]:
    """One ``WHERE`` clause per chunk of ``pairs``: rows whose ``(first, second)`` is a pair."""
    for start in range(0, len(pairs), PAIRS_PER_STATEMENT):
        chunk = pairs[start : start + PAIRS_PER_STATEMENT]
        yield or_(*(and_(first == a, second == b) for a, b in chunk))
