"""docs/market.md's reference-price section states formulas, defaults, clamps, the
governed weights and a worked example; these tests hold the code to them."""

from __future__ import annotations

import re
from pathlib import Path

from wattx.domain import Tariff
from wattx.market.reference_price import (
    GOVERNED_BASE,
    GOVERNED_WEIGHTS,
    ReferencePriceInputs,
    ReferencePriceWeights,
    explain,
)
from wattx.settlement.deploy import DEFAULT_PARAMETERS

DOC = Path(__file__).resolve().parents[2] / "docs" / "market.md"
NAMES = {
    "supply/demand": "supply_demand",
    "state of charge": "state_of_charge",
    "distance": "distance",
    "time of use": "time_of_use",
    "reliability": "reliability",
}


def section() -> str:
    text = DOC.read_text()
    start = text.index("## Reference price (advisory)")
    return text[start : text.index("\n## ", start + 1)]


def rows(columns: int) -> list[list[str]]:
    found = []
    for line in section().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == columns and cells[0] in NAMES:
            found.append(cells)
    return found


def ppm(text: str) -> int:
    whole, _, fraction = text.partition(".")
    return int(whole) * 1_000_000 + int((fraction or "0").ljust(6, "0"))


def test_the_factor_table_states_the_default_sensitivities_and_clamps() -> None:
    table = rows(5)
    assert [NAMES[r[0]] for r in table] == [name for name, _ in GOVERNED_WEIGHTS]
    # An input at the extreme shows each clamp as explain() reports it.
    by_name = {f.name: f for f in explain(ReferencePriceInputs(base_price=100_000)).factors}
    for factor, _formula, _source, sensitivity, clamp in table:
        name = NAMES[factor]
        low, high = re.fullmatch(r"\[([\d.]+), ([\d.]+)\]", clamp).groups()  # type: ignore[union-attr]
        assert (by_name[name].minimum, by_name[name].maximum) == (ppm(low), ppm(high)), name
        assert by_name[name].weight == ppm(sensitivity), name
        assert getattr(ReferencePriceWeights(), name) == ppm(sensitivity)


def test_the_governed_weights_table_names_the_deployed_parameters() -> None:
    stated = {NAMES[r[0]]: r[1].strip("`") for r in rows(2)}
    assert stated == dict(GOVERNED_WEIGHTS)
    deployed = {p.name for p in DEFAULT_PARAMETERS}
    assert set(stated.values()) | {GOVERNED_BASE} <= deployed
    assert f"`{GOVERNED_BASE}`" in section()


def test_the_worked_example() -> None:
    text = " ".join(section().split("**Worked example.**")[1].split())
    stated = text.split("Price: ")[1].split(".")[0]
    numbers = [int(n.replace(",", "")) for n in stated.split(" → ")]
    assert "demand 1,000 Wh, supply 500 Wh" in text
    assert "2,000 of 10,000 Wh" in text
    assert "5,000 per kWh and 100 bps" in text
    assert "742 of 1,486 Wh" in text
    inputs = ReferencePriceInputs(
        base_price=100_000,
        demand_wh=1_000,
        supply_wh=500,
        storage_soc_ppm=2_000 * 1_000_000 // 10_000,
        wheeling_per_kwh=5_000,
        loss_bps=100,
        tariff=Tariff.flat(50_000, 300_000),
        reliability_ppm=742 * 1_000_000 // 1_486,
    )
    explained = explain(inputs)
    running = [explained.base_price]
    for factor in explained.factors:
        running.append(running[-1] * factor.value // 1_000_000)
        assert f"{factor.value:,}" in text, factor.name
    assert numbers == running
    assert numbers[-1] == explained.price
