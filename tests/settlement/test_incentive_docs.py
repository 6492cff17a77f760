"""docs/settlement.md, "Node incentives": the parameter table is the deployment's, every key
the contract reads is in it, and the worked example is what the contract pays."""

from __future__ import annotations

import re
from pathlib import Path

from wattx.settlement.artifacts import CONTRACTS_DIR
from wattx.settlement.deploy import DEFAULT_PARAMETERS
from wattx.settlement.embedded import EmbeddedChain

from .test_incentives_contract import MIN_BOND, NI, fund_pool, new_node, report, score

DOC = Path(__file__).parents[2] / "docs" / "settlement.md"


def _table_after(marker: str) -> tuple[str, list[list[str]]]:
    text = DOC.read_text(encoding="utf-8")
    at = text.index(marker)
    head = text[at : text.index("-->", at)]
    lines = [ln for ln in text[at:].splitlines()[1:] if ln.strip()]
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return head, rows


def _int(cell: str) -> int:
    match = re.match(r"[\d,]+", cell)
    assert match, cell
    return int(match.group().replace(",", ""))


def test_the_parameter_table_is_the_deployment_and_the_contract() -> None:
    _, rows = _table_after("<!-- incentive-parameters -->")
    documented = {r[0].strip("`"): (_int(r[1]), _int(r[2])) for r in rows}
    deployed = {
        p.name: (p.initial, p.maximum)
        for p in DEFAULT_PARAMETERS
        if p.name.startswith("incentive_")
    }
    assert documented == deployed
    source = (CONTRACTS_DIR / "NetworkIncentives.vy").read_text()
    read = set(re.findall(r'keccak256\("(incentive_\w+)"\)', source))
    assert read == set(deployed)


def test_the_worked_example_is_what_the_contract_pays() -> None:
    head, rows = _table_after("<!-- incentive-example")
    pool = int(re.search(r"pool=(\d+)", head).group(1))  # type: ignore[union-attr]
    chain = EmbeddedChain()
    nodes = {r[0]: new_node(chain, f"doc-{r[0]}", _int(r[1])) for r in rows}
    fund_pool(chain, pool)
    batch = [(nodes[r[0]].node_id, _int(r[2]), _int(r[3]), _int(r[4])) for r in rows]
    paid = report(chain, 1, batch)
    for r in rows:
        counted = score(_int(r[2]), _int(r[3]), _int(r[4])) if _int(r[1]) >= MIN_BOND else 0
        assert _int(r[5]) == counted, r
        assert chain.view(NI, "pending", nodes[r[0]].node_id) == _int(r[6]), r
    assert paid == sum(_int(r[6]) for r in rows)
    text = DOC.read_text(encoding="utf-8")
    assert f"The period pays {paid:,}" in text
    assert f"{pool - paid:,} stays in the pool" in text
