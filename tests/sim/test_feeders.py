"""The two-feeder community: a binding limit, split prices, rent, and the report's grid part."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wattx.sim.errors import SimulationConfigError
from wattx.sim.feeders import LINK_FLOWS, TwoFeeders, run_feeder_market, write_feeder_report
from wattx.sim.kpis import compute_kpis
from wattx.sim.scenario import Scenario
from wattx.sim.simulation import CommunitySimulation, run_grid_only

TIGHT = TwoFeeders(export_wh=300, import_wh=300)


def test_a_tight_feeder_binds_splits_prices_and_collects_rent(small_scenario: Scenario) -> None:
    run = run_feeder_market(small_scenario, TIGHT, limited=True)
    binding = [row for row in run.links if row.shadow_price > 0]
    assert binding, "the sunny feeder's export limit binds at midday"
    for row in run.links:
        assert row.capacity_wh == 300
        assert row.flow_wh <= row.capacity_wh
    for row in binding:
        prices = run.zone_prices[row.epoch_id]
        child, parent = prices[row.child], prices[row.parent]
        assert child is not None
        assert parent is not None
        # Across a binding link the zones clear apart, by at least its shadow price.
        assert abs(parent - child) >= row.shadow_price - 1
    congestion = run.congestion()
    assert congestion["rent"] == sum(row.rent for row in run.links) > 0
    assert congestion["split_price_epochs"] == len({row.epoch_id for row in binding})


def test_money_is_conserved_with_the_rent(small_scenario: Scenario) -> None:
    run = run_feeder_market(small_scenario, TIGHT, limited=True)
    paid = sum(r.local_paid for r in run.results.records)
    earned = sum(r.local_earned for r in run.results.records)
    # Buyers pay sellers' value + wheeling + congestion rent; the rent is part of the gap.
    assert paid - earned >= run.congestion()["rent"] > 0


def test_limits_never_raise_the_traded_volume_and_the_unlimited_tree_collects_no_rent(
    small_scenario: Scenario,
) -> None:
    limited = run_feeder_market(small_scenario, TIGHT, limited=True)
    free = run_feeder_market(small_scenario, TIGHT, limited=False)
    assert free.congestion()["rent"] == 0
    assert all(row.capacity_wh is None for row in free.links)
    first_binding = min(row.epoch_id for row in limited.links if row.shadow_price > 0)
    before = [m for m in limited.results.market if m.epoch_id <= first_binding]
    same = [m for m in free.results.market if m.epoch_id <= first_binding]
    # Same weather and loads and, up to the first binding epoch, the same quotes.
    assert [m.traded_wh for m in before[:-1]] == [m.traded_wh for m in same[:-1]]
    assert before[-1].traded_wh < same[-1].traded_wh


def test_the_report_plots_flows_against_limits_and_compares_with_no_limits(
    small_scenario: Scenario, tmp_path: Path
) -> None:
    baseline = run_grid_only(small_scenario)
    run = run_feeder_market(small_scenario, TIGHT, limited=True)
    free = run_feeder_market(small_scenario, TIGHT, limited=False)
    write_feeder_report(run, baseline, tmp_path, free)
    assert (tmp_path / LINK_FLOWS).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "kpis.json").read_text())
    congestion = data["congestion"]
    assert congestion["rent"] == run.congestion()["rent"] > 0
    links = {(link["child"], link["direction"]): link for link in congestion["links"]}
    assert links[("feeder-a", "up")]["max_flow_wh"] == 300
    assert links[("feeder-a", "up")]["binding_epochs"] > 0
    compared = data["without_limits"]
    assert compared["congestion_rent"] == [congestion["rent"], 0]
    assert compared["traded_wh"][0] < compared["traded_wh"][1]
    page = (tmp_path / "index.html").read_text()
    assert LINK_FLOWS in page
    assert "Congestion rent" in page


def test_stored_energy_is_valued_at_the_last_reference_price(small_scenario: Scenario) -> None:
    simulation = CommunitySimulation(small_scenario, mechanism="call_auction")
    grid = small_scenario.grid
    for index in range(grid.steps):
        simulation.order_intents(index, reference_price=123_456)
        simulation.deliver(index)
    results = simulation.results
    bounds = results.bounds[-1]
    assert results.last_reference_price == bounds.clamp(123_456)
    price = results.end_value_price()
    report = compute_kpis(results, run_grid_only(small_scenario))
    stored = [m for m in report.members if m.totals.battery_change_wh != 0]
    assert stored, "the scenario has batteries that end the run fuller or emptier"
    for member in report.members:
        assert member.stored_energy_value == member.totals.battery_change_wh * price // 1000
    # No trades: the same as the baseline, valued at the same price, so nobody is worse off.
    assert report.community.members_worse_off == 0


def test_negative_feeder_capacities_are_refused() -> None:
    with pytest.raises(SimulationConfigError):
        TwoFeeders(export_wh=-1)


def test_the_command_writes_both_reports_and_refuses_a_negative_capacity(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from wattx.cli.main import app

    runner = CliRunner()
    refused = runner.invoke(
        app, ["simulate-feeders", "--capacity-wh", "-1", "--out", str(tmp_path)]
    )
    assert refused.exit_code == 1
    assert "wattx: error: feeder capacities must be >= 0" in refused.output
    assert not any(tmp_path.iterdir())
    done = runner.invoke(
        app,
        [
            "simulate-feeders",
            "--households",
            "4",
            "--capacity-wh",
            "200",
            "--epoch-minutes",
            "60",
            "--epochs",
            "3",
            "--out",
            str(tmp_path),
        ],
    )
    assert done.exit_code == 0, done.output
    assert "epochs with a binding link:" in done.output
    assert "congestion rent settled on chain:" in done.output
    # The headline report is the service's; the model's comparison sits beside it.
    data = json.loads((tmp_path / "with_limits" / "kpis.json").read_text())
    assert {"congestion", "settlement", "market"} <= set(data)
    assert (tmp_path / "with_limits" / LINK_FLOWS).exists()
    model = json.loads((tmp_path / "model" / "with_limits" / "kpis.json").read_text())
    assert "without_limits" in model
    assert (tmp_path / "model" / "without_limits" / "kpis.json").exists()
