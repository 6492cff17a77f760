"""The shared KPI test vectors (``tests/data/kpi_vectors.json``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wattx.domain.kpis import Purchase, Sale

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent.parent / "data" / "kpi_vectors.json").read_text()
)["household"]


def purchases(vector: dict[str, Any]) -> list[Purchase]:
    return [Purchase(*p) for p in vector["purchases"]]


def sales(vector: dict[str, Any]) -> list[Sale]:
    return [Sale(*s) for s in vector["sales"]]
