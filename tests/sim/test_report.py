from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt

from wattx.sim.kpis import compute_kpis
from wattx.sim.plots import _save
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


def test_report_says_its_units_and_its_shared_assets(
    small_scenario: Scenario, tmp_path: Path
) -> None:
    baseline = run_grid_only(small_scenario)
    write_report(baseline, baseline, tmp_path)
    data = json.loads((tmp_path / "kpis.json").read_text())
    assert "credit" in data["units"]["money"]
    assert "ppm" in data["units"]["ratios"]
    assert "Wh" in data["units"]["energy"]
    page = (tmp_path / "index.html").read_text()
    assert "Net cost (credit)" in page
    households = sum(
        1 for m in small_scenario.community.members if m.kind not in ("school", "community_battery")
    )
    assert f"Members: {households} households plus " in page
    assert "school" in page.split("Members:", 1)[1].split(".", 1)[0]


def test_stored_energy_is_valued_at_the_end_so_a_full_battery_is_not_worse_off(
    small_scenario: Scenario,
) -> None:
    results = run_grid_only(small_scenario)
    feed_in = results.bounds[-1].feed_in
    report = compute_kpis(results, results)
    charged = [m for m in report.members if m.totals.battery_change_wh != 0]
    assert charged, "the scenario has batteries that end the run fuller or emptier"
    for member in report.members:
        assert member.stored_energy_value == member.totals.battery_change_wh * feed_in // 1000
        assert member.savings == 0
    community = report.community
    assert community.stored_energy_value == community.totals.battery_change_wh * feed_in // 1000


def test_legends_sit_outside_the_plot_so_no_curve_is_hidden(tmp_path: Path) -> None:
    figure, axes = plt.subplots()
    axes.step([0, 17, 21, 24], [1, 2, 3, 3], label="retail")
    _save(figure, axes, tmp_path / "f.png")
    legend = axes.get_legend()
    assert legend is not None
    assert legend.get_window_extent().x0 >= axes.get_window_extent().x1
