from __future__ import annotations

from dataclasses import replace

import pytest

from wattx.domain.orders import Side
from wattx.sim.balance import check_energy_balance
from wattx.sim.errors import EnergyBalanceError, SimulationConfigError, StepOrderError
from wattx.sim.kpis import compute_kpis
from wattx.sim.results import LocalFills
from wattx.sim.scenario import Scenario
from wattx.sim.simulation import CommunitySimulation, run_grid_only
from wattx.sim.strategies import StrategyName
from wattx.units import trade_value


def test_grid_only_balance_closes_for_every_member_and_the_community(
    small_scenario: Scenario,
) -> None:
    results = run_grid_only(small_scenario)
    assert len(results.records) == len(small_scenario.community.members) * 96
    assert all(r.balance_residual_wh == 0 for r in results.records)
    balance = check_energy_balance(results)
    assert balance.inflow_wh == balance.outflow_wh
    assert balance.production_wh > 0
    assert balance.grid_import_wh > 0
    assert balance.battery_losses_wh > 0  # home batteries cycled
    assert balance.network_losses_wh == 0


def test_grid_only_is_reproducible(small_scenario: Scenario) -> None:
    assert run_grid_only(small_scenario).records == run_grid_only(small_scenario).records


def test_a_broken_record_is_caught(small_scenario: Scenario) -> None:
    results = run_grid_only(small_scenario)
    results.records[10] = replace(
        results.records[10], grid_import_wh=results.records[10].grid_import_wh + 1
    )
    with pytest.raises(EnergyBalanceError) as caught:
        check_energy_balance(results)
    assert caught.value.code == "energy_balance_not_closed"
    assert caught.value.context["residual_wh"] == 1


def test_grid_only_kpis_have_zero_savings_and_sane_ratios(small_scenario: Scenario) -> None:
    baseline = run_grid_only(small_scenario)
    report = compute_kpis(baseline, baseline)
    community = report.community
    assert community.savings == 0
    assert community.members_worse_off == 0
    assert community.totals.local_sold_wh == 0
    assert community.self_sufficiency_ppm is not None
    assert 0 < community.self_sufficiency_ppm < 1_000_000
    consumers = [m for m in report.members if m.kind == "consumer"]
    assert consumers
    assert all(m.self_sufficiency_ppm == 0 for m in consumers)
    assert all(m.self_consumption_ppm is None for m in consumers)
    expected_cost = sum(r.grid_paid - r.grid_earned for r in baseline.records)
    assert community.net_cost == expected_cost


def test_local_trade_is_settled_and_priced_between_the_tariffs(small_scenario: Scenario) -> None:
    """Match every buy intent of one midday epoch against the sell intents, at one price."""
    index = 48  # 12:00 UTC
    baseline = run_grid_only(small_scenario)
    simulation = CommunitySimulation(small_scenario, StrategyName.FIXED_MARGIN, "test")
    for step in range(index):
        simulation.deliver(step)
    intents = simulation.order_intents(index)
    sells = [i for i in intents if i.side is Side.SELL]
    buys = [i for i in intents if i.side is Side.BUY]
    assert sells
    assert buys
    bounds = simulation.bounds[index]
    price = bounds.midpoint
    fills: dict[str, LocalFills] = {}
    supply = sum(i.qty_wh for i in sells)
    for buy in buys:
        qty = min(buy.qty_wh, supply)
        supply -= qty
        fills[buy.member_id] = LocalFills(bought_wh=qty, paid=trade_value(qty, price))
    demand = sum(f.bought_wh for f in fills.values())
    for sell in sells:
        qty = min(sell.qty_wh, demand)
        demand -= qty
        fills[sell.member_id] = LocalFills(sold_wh=qty, earned=trade_value(qty, price))
    records = simulation.deliver(index, fills)
    assert sum(r.local_sold_wh for r in records) == sum(r.local_bought_wh for r in records) > 0
    assert all(r.balance_residual_wh == 0 for r in records)
    for step in range(index + 1, small_scenario.grid.steps):
        simulation.deliver(step)
    report = compute_kpis(simulation.results, baseline)
    assert report.balance.inflow_wh == report.balance.outflow_wh
    buyers = {b.member_id for b in buys}
    for member in report.members:
        if member.member_id in buyers and member.totals.local_bought_wh > 0:
            # A buyer who paid the midpoint instead of retail for the same energy saved money.
            assert member.savings is not None
            assert member.savings > 0
    assert report.community.totals.local_sold_wh > 0


def test_fills_must_name_members_and_be_non_negative(small_scenario: Scenario) -> None:
    simulation = CommunitySimulation(small_scenario)
    with pytest.raises(SimulationConfigError):
        simulation.deliver(0, {"stranger": LocalFills(bought_wh=1, paid=300)})
    with pytest.raises(SimulationConfigError):
        LocalFills(sold_wh=-1)


def test_steps_are_delivered_in_order(small_scenario: Scenario) -> None:
    simulation = CommunitySimulation(small_scenario)
    simulation.deliver(0)
    with pytest.raises(StepOrderError):
        simulation.deliver(2)
    with pytest.raises(StepOrderError):
        simulation.deliver(0)


def test_order_intents_are_in_bounds_for_a_whole_day(small_scenario: Scenario) -> None:
    simulation = CommunitySimulation(small_scenario, StrategyName.ZERO_INTELLIGENCE)
    seen = 0
    for index in range(small_scenario.grid.steps):
        bounds = simulation.bounds[index]
        for intent in simulation.order_intents(index):
            seen += 1
            assert bounds.feed_in <= intent.limit_price <= bounds.retail
            assert intent.qty_wh > 0
            assert intent.epoch_id == small_scenario.grid.epoch_id(index)
        simulation.deliver(index)
    assert seen > small_scenario.grid.steps
