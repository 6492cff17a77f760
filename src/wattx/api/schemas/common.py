"""Shapes shared by many routes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, TypeVar

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Problem(BaseModel):
    """RFC 9457 problem details, with wattx's stable ``code``."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str
    context: dict[str, object] | None = None
    errors: list[dict[str, object]] | None = None


class StrictModel(BaseModel):
    """Request bodies: unknown fields are refused (numbers use ``StrictInt``: no coercion)."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel):
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last page")


Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip")]


def page(limit: int, offset: int, returned: int) -> Page:
    """The page of ``returned`` rows fetched with ``limit + 1`` (see :func:`page_of`)."""
    return Page(
        limit=limit, offset=offset, next_offset=offset + limit if returned > limit else None
    )


def page_of(rows: Sequence[T], limit: int, offset: int) -> tuple[list[T], Page]:
    """The first ``limit`` of ``rows`` and their page.

    The rows were fetched with ``limit + 1``: the extra one, if there, says
    another page follows; without it, ``next_offset`` is null.
    """
    return list(rows[:limit]), page(limit, offset, len(rows))
