from __future__ import annotations

import json
from pathlib import Path

from wattx.sim.report import FIGURES, write_report
from wattx.sim.scenario import Scenario
from wattx.sim.simulation import run_grid_only


def _only_ints_and_strings(value: object) -> bool:
    if isinstance(value, dict):
        return all(_only_ints_and_strings(v) for v in value.values())
    if isinstance(value, list):
        return all(_only_ints_and_strings(v) for v in value)
    return value is None or (isinstance(value, (int, str)) and not isinstance(value, bool))


def test_report_files_are_written(small_scenario: Scenario, tmp_path: Path) -> None:
    baseline = run_grid_only(small_scenario)
    out = tmp_path / "report"
    report = write_report(baseline, baseline, out)
    for name in (*FIGURES, "index.html", "kpis.json"):
        assert (out / name).stat().st_size > 0
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "kpis.json").read_text())
    assert _only_ints_and_strings(data)
    assert data["energy_balance"]["inflow_wh"] == data["energy_balance"]["outflow_wh"]
    assert len(data["members"]) == len(small_scenario.community.members)
    page = (out / "index.html").read_text()
    assert "closes exactly" in page
    assert report.members[0].member_id in page
