"""docs/settlement.md, "Governance in the service": the table of governed parameters is the
deployment's parameter list, with the units the API shows, and every parameter in it is
one the service or the incentives contract applies."""

from __future__ import annotations

import re
from pathlib import Path

from wattx.governance import (
    MARKET_FEE,
    MINT_THRESHOLD,
    PRICE_CEILING_MARGIN,
    PRICE_FLOOR_MARGIN,
    unit_of,
)
from wattx.market.rates import GOVERNED_RATES
from wattx.market.reference_price import GOVERNED_BASE, GOVERNED_WEIGHTS
from wattx.settlement.artifacts import CONTRACTS_DIR
from wattx.settlement.deploy import DEFAULT_PARAMETERS

DOC = Path(__file__).parents[2] / "docs" / "settlement.md"


def _rows() -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    lines = text[text.index("<!-- governed-parameters -->") :].splitlines()[1:]
    lines = [line for line in lines if line.strip()]
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def _int(cell: str) -> int:
    assert re.fullmatch(r"[\d,]+", cell), cell
    return int(cell.replace(",", ""))


def test_the_table_is_the_deployed_parameter_list_with_its_units() -> None:
    rows = _rows()
    assert [r[0].strip("`") for r in rows] == [p.name for p in DEFAULT_PARAMETERS]
    for row, parameter in zip(rows, DEFAULT_PARAMETERS, strict=True):
        assert (_int(row[1]), _int(row[2])) == (parameter.initial, parameter.maximum), row
        assert row[3] == unit_of(parameter.name) != "", row


def test_every_governed_parameter_is_applied_somewhere() -> None:
    source = (CONTRACTS_DIR / "NetworkIncentives.vy").read_text(encoding="utf-8")
    applied = (
        {MARKET_FEE, PRICE_FLOOR_MARGIN, PRICE_CEILING_MARGIN, MINT_THRESHOLD, GOVERNED_BASE}
        | {name for name, _field in GOVERNED_RATES}
        | {name for _factor, name in GOVERNED_WEIGHTS}
        | set(re.findall(r'keccak256\("(incentive_\w+)"\)', source))
    )
    assert {p.name for p in DEFAULT_PARAMETERS} == applied
