"""A small community trading through the in-process service, end to end over HTTP."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from pathlib import Path

import pytest

from wattx.domain import EpochSchedule
from wattx.sim.balance import check_energy_balance
from wattx.sim.community import CommunityMix, HouseholdKind, draw_community
from wattx.sim.kpis import compute_kpis
from wattx.sim.runner.compare import write_mechanism_report
from wattx.sim.runner.faults import EXPECTED_ANSWER, NO_FAULT, Fault, FaultPlan
from wattx.sim.runner.market_round import OrderAnswers
from wattx.sim.runner.meters import LATE_IN_ORDER, ReadingTransport
from wattx.sim.runner.run import MechanismRun, run_in_process
from wattx.sim.scenario import Scenario, build_scenario
from wattx.sim.simulation import run_grid_only
from wattx.sim.strategies import StrategyName
from wattx.sim.timegrid import TimeGrid

HOUSEHOLD_KINDS = {
    HouseholdKind.CONSUMER,
    HouseholdKind.PV_PROSUMER,
    HouseholdKind.PV_BATTERY,
    HouseholdKind.EV_OWNER,
}


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    community = draw_community(CommunityMix(households=4), seed=3)
    return build_scenario(community, TimeGrid.for_days(date(2026, 6, 1), 1, EpochSchedule(3600)))


@pytest.fixture(scope="module")
def call_auction_run(scenario: Scenario) -> MechanismRun:
    # One run serves several tests; a synchronous fixture owns its own event loop.
    faults = FaultPlan.each(100_000)
    return asyncio.run(
        run_in_process(scenario, "call_auction", StrategyName.ZERO_INTELLIGENCE, faults=faults)
    )


async def test_local_trades_happen_and_the_energy_balance_closes(
    call_auction_run: MechanismRun, scenario: Scenario
) -> None:
    results = call_auction_run.results
    assert len(results.records) == scenario.grid.steps * len(scenario.community.members)
    assert sum(r.local_sold_wh for r in results.records) > 0
    assert sum(m.trade_count for m in results.market) > 0
    balance = check_energy_balance(results)
    assert balance.inflow_wh == balance.outflow_wh
    # Every order sent is accepted; a seller without minted tokens sends none.
    assert set(call_auction_run.answers.orders) <= {"accepted", "no_tokens"}


async def test_sellers_trade_minted_tokens_and_every_trading_epoch_settles_on_chain(
    call_auction_run: MechanismRun,
) -> None:
    assert call_auction_run.energy_granted_wh == 0
    assert call_auction_run.energy_minted_wh > 0
    trading_epochs = sum(1 for m in call_auction_run.results.market if m.trade_count)
    settlement = call_auction_run.settlement
    assert settlement is not None
    assert settlement.by_status == {"confirmed": trading_epochs}
    assert settlement.trades_settled == sum(m.trade_count for m in call_auction_run.results.market)
    assert settlement.gas_used is not None
    assert settlement.gas_used > 0
    assert call_auction_run.answers.settlements["accepted"] == trading_epochs


async def test_no_household_is_worse_off_than_grid_only(
    call_auction_run: MechanismRun, scenario: Scenario
) -> None:
    report = compute_kpis(call_auction_run.results, run_grid_only(scenario))
    households = [m for m in report.members if HouseholdKind(m.kind) in HOUSEHOLD_KINDS]
    assert households
    assert all(m.savings is not None and m.savings >= 0 for m in households), [
        (m.member_id, m.savings) for m in households
    ]


async def test_every_injected_fault_meets_the_rule_that_catches_it(
    call_auction_run: MechanismRun,
) -> None:
    readings = call_auction_run.readings
    assert readings is not None
    answers = readings.by_fault
    for fault, expected in EXPECTED_ANSWER.items():
        met = {answer: n for (f, answer), n in answers.items() if f == fault.value}
        assert met, f"no {fault} fault was injected"
        assert set(met) == {expected}, (fault, met)
    assert readings.batches_lost > 0
    ordinary = {answer for (f, answer) in answers if f == NO_FAULT}
    assert ordinary == {"accepted"}
    in_time_or_in_order = answers[(NO_FAULT, "accepted")] + answers[(LATE_IN_ORDER, "accepted")]
    assert readings.readings_accepted == in_time_or_in_order
    assert readings.readings_duplicate == answers[(Fault.DUPLICATED.value, "duplicate")]
    assert readings.readings_quarantined == 0
    assert Fault.LOST.value not in {f for f, _ in answers}


async def test_every_market_mechanism_closes_the_balance(scenario: Scenario) -> None:
    for mechanism in ("continuous", "pay_as_bid"):
        run = await run_in_process(scenario, mechanism, StrategyName.FIXED_MARGIN)
        assert run.readings is None
        check_energy_balance(run.results)
        assert sum(r.local_sold_wh for r in run.results.records) > 0, mechanism


async def test_meters_posting_alone_meet_the_same_answers_as_through_the_concentrator(
    call_auction_run: MechanismRun, scenario: Scenario
) -> None:
    alone = await run_in_process(
        scenario,
        "call_auction",
        StrategyName.ZERO_INTELLIGENCE,
        faults=FaultPlan.each(100_000),
        transport=ReadingTransport.PER_METER,
    )
    assert alone.readings is not None
    assert call_auction_run.readings is not None
    assert alone.readings.as_json() == call_auction_run.readings.as_json()


def test_the_report_has_the_market_with_its_settlements(
    call_auction_run: MechanismRun, scenario: Scenario, tmp_path: Path
) -> None:
    baseline = MechanismRun(run_grid_only(scenario), OrderAnswers(), 0)
    write_mechanism_report(call_auction_run, baseline, tmp_path)
    market = json.loads((tmp_path / "kpis.json").read_text())["market"]
    results = call_auction_run.results
    assert market["trade_count"] == sum(m.trade_count for m in results.market) > 0
    assert market["traded_wh"] == sum(r.local_sold_wh for r in results.records)
    # The runner mints and settles each epoch as the operator: every trading epoch
    # is settled on chain, and the gas is the settlements' own.
    settled = sum(1 for m in results.market if m.trade_count)
    assert market["settlement_count"] == settled
    assert call_auction_run.settlement is not None
    assert market["gas_used"] == call_auction_run.settlement.gas_used
    page = (tmp_path / "index.html").read_text()
    assert "<h2>Market</h2>" in page
    assert f"epochs settled on chain</td><td>{settled}<" in page
    # Fees per epoch, each with the governed fee of the parameter set it ran under.
    per_epoch = market["fees_per_epoch"]
    assert len(per_epoch) == settled
    assert sum(e["fees"] for e in per_epoch) == market["fees_settled"] > 0
    assert {e["market_fee_bps"] for e in per_epoch} == {25}
    assert all(len(e["parameter_set_hash"]) == 64 for e in per_epoch)
    assert "<h3>Fees per epoch</h3>" in page
