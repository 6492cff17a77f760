"""docs/settlement.md lists exactly the public functions of every contract's ABI, and the
deployment publishes those ABIs."""

from __future__ import annotations

import json
import re
from pathlib import Path

from wattx.settlement.artifacts import CONTRACT_NAMES, load_artifact
from wattx.settlement.deployment import Deployment

DOC = Path(__file__).parents[2] / "docs" / "settlement.md"


def documented_functions() -> dict[str, set[str]]:
    """Contract → function names, from the tables after ``<!-- contract-functions -->``."""
    text = DOC.read_text(encoding="utf-8")
    _, marker, rest = text.partition("<!-- contract-functions -->")
    assert marker, "docs/settlement.md has no contract function tables"
    section = rest.split("\n### ", 1)[0]
    found: dict[str, set[str]] = {}
    current: str | None = None
    for line in section.splitlines():
        if line.startswith("#### "):
            current = line[5:].strip()
            found[current] = set()
        elif line.startswith("| `") and current is not None:
            first_cell = line.split("|")[1]
            found[current].update(re.findall(r"`(\w+)\(", first_cell))
    return found


def abi_functions(name: str) -> set[str]:
    return {e["name"] for e in load_artifact(name).abi if e.get("type") == "function"}


def test_every_public_function_is_documented() -> None:
    documented = documented_functions()
    assert set(documented) == set(CONTRACT_NAMES)
    for name in CONTRACT_NAMES:
        missing = abi_functions(name) - documented[name]
        extra = documented[name] - abi_functions(name)
        assert not missing, f"{name}: undocumented {sorted(missing)}"
        assert not extra, f"{name}: documented but not in the ABI {sorted(extra)}"


def test_the_deployment_file_publishes_every_abi(tmp_path: Path) -> None:
    contracts = {n: f"0x{i:040x}" for i, n in enumerate(CONTRACT_NAMES, start=1)}
    deployment = Deployment(1, 2, f"0x{99:040x}", f"0x{98:040x}", contracts)
    path = tmp_path / "deployment.json"
    deployment.save(path)
    written = json.loads(path.read_text())
    assert written["contracts"] == contracts
    assert written["abis"] == {n: list(load_artifact(n).abi) for n in CONTRACT_NAMES}
    assert Deployment.load(path) == Deployment.from_json(deployment.to_json())
