"""docs/market.md's grid section states rules; these tests hold it to them."""

from __future__ import annotations

import re
from pathlib import Path

from wattx.domain import Side
from wattx.grid import (
    Direction,
    GridLink,
    GridTopologyError,
    GridTree,
    NegativeCapacityError,
    UnknownGridZoneError,
)
from wattx.market import ZoneRateTable
from wattx.market.coupling import PIECES, run_coupled_auction

from .helpers import order, rates_for

DOC = Path(__file__).resolve().parents[2] / "docs" / "market.md"


def section() -> str:
    text = DOC.read_text()
    start = text.index("## The grid tree and the coupled auction")
    return text[start : text.index("\n## ", start + 1)]


def number(pattern: str, text: str) -> int:
    found = re.search(pattern, text)
    assert found, pattern
    return int(found.group(1).replace(",", ""))


def test_the_error_table_lists_the_grid_codes() -> None:
    codes = set(re.findall(r"^\| `([a-z_]+)` \|", section(), flags=re.MULTILINE))
    assert codes == {
        GridTopologyError.code,
        UnknownGridZoneError.code,
        NegativeCapacityError.code,
    }


def test_the_stated_number_of_starting_segments() -> None:
    assert number(r"start\s+as (\d+) segments", section()) == PIECES


def test_the_worked_example() -> None:
    text = " ".join(section().split("**Worked example**")[1].split("**Fast path.**")[0].split())
    cap = number(r"export capacity ([\d,]+) Wh", text)
    tree = GridTree.build(
        ["t", "f1", "f2"], [GridLink("f1", "t", export_wh=cap), GridLink("f2", "t")]
    )
    sells = [order("s", Side.SELL, 1_000, 100_000, "f1")]
    buys = [order("h", Side.BUY, 1_000, 300_000, "f2"), order("c", Side.BUY, 200, 120_000, "f1")]
    assert "sell of 1,000 Wh at 100,000" in text
    assert "buy of 200 Wh at 120,000" in text
    assert "buy of 1,000 Wh at 300,000" in text
    clearing = run_coupled_auction(buys, sells, tree, rates_for(tree, ZoneRateTable.lossless()))
    assert sum(m.sold_wh for m in clearing.matches) == number(r"auction sells ([\d,]+) Wh", text)
    up = next(r for r in clearing.links if r.child == "f1" and r.direction is Direction.UP)
    assert up.flow_wh == number(r"flow ([\d,]+) of", text)
    assert clearing.seller_prices["f1"] == number(r"Prices: f1 ([\d,]+)", text)
    assert clearing.buyer_prices["f2"] == number(r"f2 ([\d,]+);", text)
    assert up.shadow_price == number(r"f1 up: ([\d,]+)", text)
    assert clearing.rent == up.rent == number(r"congestion rent: ([\d,]+)", text)
    # The stated rent rule: sold Wh times the shadow price, per kWh, rounded down.
    assert up.rent == up.flow_wh * up.shadow_price // 1000
