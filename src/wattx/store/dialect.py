"""Which database a session talks to, where a statement differs between them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session


def is_postgres(session: AsyncSession | Session) -> bool:
    """Whether the session's database is PostgreSQL (else SQLite)."""
    return bool(session.get_bind().dialect.name == "postgresql")


# A list of ids as one parameter, ``ids``: an array on PostgreSQL (``column == IDS_PG``),
# one JSON text on SQLite (``column.in_(IDS_SQLITE)``). A statement built with either is
# one text, prepared once, whatever the number of ids (an expanded IN list is rendered and
# prepared anew for each count). ``ids_parameter`` gives the value each expects.
IDS_PG = any_(bindparam("ids", type_=ARRAY(String)))
IDS_SQLITE = select(func.json_each(bindparam("ids", type_=String)).table_valued("value").c.value)


def ids_parameter(session: AsyncSession | Session, ids: Sequence[str]) -> dict[str, Any]:
    """The ``ids`` parameter of a statement built with :data:`IDS_PG` or :data:`IDS_SQLITE`."""
    return {"ids": list(ids) if is_postgres(session) else json.dumps(list(ids))}
