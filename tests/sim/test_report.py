from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from wattx.sim.kpis import compute_kpis
from wattx.sim.plots import _save, prices_figure, traded_volume_figure
from wattx.sim.report import FIGURES, write_report
from wattx.sim.results import EpochMarketRecord
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


def test_the_per_epoch_charts_share_one_time_axis(small_scenario: Scenario) -> None:
    baseline = run_grid_only(small_scenario)
    grid = baseline.grid
    # Clearing prices in two epochs of the run, so that the price chart has its scatter.
    priced = {grid.epoch_id(10): 120_000, grid.epoch_id(70): 90_000}
    results = dataclasses.replace(
        baseline,
        market=[EpochMarketRecord(e, 500, price, trade_count=1) for e, price in priced.items()],
    )
    hours = np.arange(grid.steps) * grid.step_s / 3600.0
    figures = {"volume": traded_volume_figure(results), "prices": prices_figure(results)}
    try:
        axes = {name: figure.axes[0] for name, figure in figures.items()}
        limits = {name: ax.get_xlim() for name, ax in axes.items()}
        labels = {name: ax.get_xlabel() for name, ax in axes.items()}
        # One axis: the same span (the whole run, in hours from its start) and label.
        assert set(limits.values()) == {(0.0, grid.steps * grid.step_s / 3600.0)}
        assert set(labels.values()) == {f"hours since {grid.start:%Y-%m-%d %H:%M} UTC"}
        # Every series puts epoch i of the run at the same x.
        for name, ax in axes.items():
            assert ax.get_lines(), name
            for line in ax.get_lines():
                xs = np.asarray(line.get_xdata(), dtype=float)
                # A "post" step line repeats each x once: its distinct x are the epochs.
                assert np.array_equal(np.unique(xs), hours), (name, line.get_label())
        (scatter,) = axes["prices"].collections
        offsets = scatter.get_offsets()
        expected = [
            ((e - grid.first_epoch_id) * grid.step_s / 3600.0, p / 1e6) for e, p in priced.items()
        ]
        assert [tuple(map(float, row)) for row in offsets] == expected
    finally:
        for figure in figures.values():
            plt.close(figure)
