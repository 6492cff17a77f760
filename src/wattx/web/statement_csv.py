"""The monthly statement as CSV: one row per figure, integers only.

Columns ``section,at,kind,ref,amount``. ``section`` is ``credit`` (micro-units),
``energy`` (Wh) or ``kpi``; each asset has an ``opening`` row, one row per
journal entry of the month (``at`` in ISO 8601 UTC) and a ``closing`` row; the
``kpi`` rows carry ``self_sufficiency_ppm``, ``self_consumption_ppm`` (empty
when there is nothing to divide by) and ``savings`` (micro-units). A
``status`` row says whether the month is ``issued`` (ended) or ``provisional``.
"""

from __future__ import annotations

import csv
import io

from wattx.services.funds.statements import AssetStatement, Statement

COLUMNS = ("section", "at", "kind", "ref", "amount")


def _asset_rows(side: AssetStatement) -> list[list[str]]:
    rows = [[side.asset, "", "opening", "", str(side.opening)]]
    rows += [
        [side.asset, line.at.isoformat(), line.kind, line.ref or "", str(line.amount)]
        for line in side.lines
    ]
    rows.append([side.asset, "", "closing", "", str(side.closing)])
    return rows


def statement_rows_csv(statement: Statement) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerow(["status", "", "issued" if statement.issued else "provisional", "", ""])
    writer.writerows(_asset_rows(statement.credit))
    writer.writerows(_asset_rows(statement.energy))
    k = statement.kpis
    for name, value in (
        ("self_sufficiency_ppm", k.self_sufficiency_ppm),
        ("self_consumption_ppm", k.self_consumption_ppm),
        ("savings", k.savings),
    ):
        writer.writerow(["kpi", "", name, "", "" if value is None else str(value)])
    return out.getvalue()
