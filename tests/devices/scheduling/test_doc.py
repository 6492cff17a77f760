"""docs/devices.md stays true for scheduling: the parameter table, the worked pairing
example and the integer SoC rule's example."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

from wattx.devices.scheduling.dayahead import BatterySpec, drawn_wh, stored_wh
from wattx.devices.scheduling.pairing import Battery, PairingParams, pair_batteries

DOC = (Path(__file__).resolve().parents[3] / "docs" / "devices.md").read_text(encoding="utf-8")


def test_the_parameter_table_gives_the_defaults() -> None:
    block = DOC.split("<!-- pairing-params -->\n", 1)[1].split("\n\n", 1)[0]
    rows = [line.strip("|").split("|") for line in block.splitlines()[2:]]
    documented = {name.strip().strip("`"): int(default) for name, default, _ in rows}
    defaults = {f.name: f.default for f in dataclasses.fields(PairingParams)}
    assert documented == defaults


def test_the_worked_pairing_example_runs() -> None:
    match = re.search(r"<!-- example:pairing -->\n```json\n(.*?)\n```", DOC, re.DOTALL)
    assert match is not None
    example = json.loads(match.group(1))
    zone = [Battery(**b) for b in example["batteries"]]
    got = [dataclasses.asdict(t) for t in pair_batteries(zone)]
    assert got == example["transfers"]


def test_the_soc_rule_example_holds() -> None:
    match = re.search(
        r"at ([\d ]+) ppm a charge of ([\d ]+) Wh stores ([\d ]+) Wh and a\s+"
        r"discharge of ([\d ]+) Wh draws ([\d ]+) Wh",
        DOC,
    )
    assert match is not None
    ppm, charge, stored, discharge, drawn = (int(g.replace(" ", "")) for g in match.groups())
    assert ppm == BatterySpec(1, 0, 0).charge_efficiency_ppm
    assert stored_wh(charge, ppm) == stored
    assert drawn_wh(discharge, ppm) == drawn
