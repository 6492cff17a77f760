"""The service-driven simulator with devices: batteries and EV chargers behind a site node
obey the delivery plans, some fail (no ack, a trip, half a setpoint), and the physical
trades settle what the meters saw — refunds and imbalance charges on chain and in the
service's books."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from wattx.cli.main import app
from wattx.incentives import node_key
from wattx.settlement.contract_chain import ContractChain
from wattx.sim.bounds import PriceBounds
from wattx.sim.community import CommunityMix, draw_community
from wattx.sim.runner.client import API
from wattx.sim.runner.clock import VirtualClock
from wattx.sim.runner.compare import write_mechanism_report
from wattx.sim.runner.devices import DeviceFault, DeviceFaultPlan, DeviceFleet
from wattx.sim.runner.faults import FaultPlan
from wattx.sim.runner.market_round import OrderAnswers
from wattx.sim.runner.run import QUOTE_LEAD_S, MechanismRun, run_against
from wattx.sim.runner.scratch import InProcessDeliveryWorker, in_process_dialer, scratch_service
from wattx.sim.scenario import Scenario, build_scenario
from wattx.sim.simulation import run_grid_only
from wattx.sim.strategies import StrategyName
from wattx.sim.timegrid import TimeGrid
from wattx.units import format_money

FAULTS = DeviceFaultPlan(no_ack_ppm=150_000, trip_ppm=200_000, partial_ppm=200_000)


@dataclass
class Outcome:
    run: MechanismRun
    scenario: Scenario
    deliveries: list[dict[str, Any]]
    trades: dict[str, dict[str, Any]]
    leaves: dict[str, dict[str, Any]]
    books: dict[str, tuple[int, int, int, int]]
    """Per member: free credit and energy off chain, and on chain (free + locked)."""
    fleet: DeviceFleet
    node_on_chain: tuple[int, int, int]
    """The site node on NetworkIncentives: bond, earned and claimed (counted from 0)."""
    rewards_paid: list[int]
    """What each of the chain's ActivityReported events for the node paid it."""
    report_dir: Path


def _scenario() -> Scenario:
    # Every household has a battery or an EV charger, so most trades are physical.
    community = draw_community(
        CommunityMix(
            households=6,
            consumer_ppm=0,
            pv_prosumer_ppm=0,
            pv_battery_ppm=500_000,
            ev_owner_ppm=500_000,
            school=False,
        ),
        seed=1,
    )
    return build_scenario(community, TimeGrid(datetime(2026, 6, 1, 8, tzinfo=UTC), 12, 3600))


async def _run(scenario: Scenario, report_dir: Path) -> Outcome:
    schedule = scenario.grid.schedule(300)
    first_gate = schedule.epoch(scenario.grid.first_epoch_id).gate_closure
    clock = VirtualClock(first_gate - timedelta(seconds=QUOTE_LEAD_S))
    async with scratch_service(schedule, clock) as service:
        assert service.state is not None
        state = service.state
        fleet = DeviceFleet(in_process_dialer(state), FAULTS, worker=InProcessDeliveryWorker(state))
        try:
            run = await run_against(
                service.client,
                service.operator,
                scenario,
                "call_auction",
                StrategyName.ZERO_INTELLIGENCE,
                clock,
                schedule,
                faults=FaultPlan(),
                devices=fleet,
            )
        finally:
            await fleet.stop()
        client, operator = service.client, service.operator
        body = await client.require("GET", f"{API}/deliveries", operator, params={"limit": 200})
        deliveries: list[dict[str, Any]] = body["items"]
        trades: dict[str, dict[str, Any]] = {}
        for epoch_id in {d["epoch_id"] for d in deliveries}:
            for t in await client.all_trades(operator, epoch_id):
                trades[t["id"]] = t
        leaves = {
            d["trade_id"]: await client.require(
                "GET", f"{API}/trades/{d['trade_id']}/leaf", operator
            )
            for d in deliveries
        }
        books: dict[str, tuple[int, int, int, int]] = {}
        for user_id in {t["buyer"] for t in trades.values()} | {
            t["seller"] for t in trades.values()
        }:
            view = await state.wallet.wallet(user_id, with_chain=True)
            assert view.chain is not None
            books[user_id] = (
                view.credit.free + view.credit.locked,
                view.energy.free + view.energy.locked,
                view.chain.credit.free + view.chain.credit.locked,
                view.chain.energy.free + view.chain.energy.locked,
            )
        chain = state.chain_accounts.chain
        _, bond, _, _, earned, claimed = await state.chain_accounts.read(
            chain.view, "NetworkIncentives", "nodes", node_key(fleet.node_id)
        )
        paid = await state.chain_accounts.read(_rewards_paid, chain, fleet.node_id)
    baseline = MechanismRun(run_grid_only(scenario), OrderAnswers(), 0)
    write_mechanism_report(run, baseline, report_dir)
    return Outcome(
        run,
        scenario,
        deliveries,
        trades,
        leaves,
        books,
        fleet,
        (int(bond), int(earned) - 1, int(claimed) - 1),
        paid,
        report_dir,
    )


def _rewards_paid(chain: ContractChain, node_id: str) -> list[int]:
    return [
        int(e.args["reward"])
        for e in chain.events_since(0)
        if (e.contract, e.name) == ("NetworkIncentives", "ActivityReported")
        and bytes(e.args["node_id"]).rstrip(b"\0").decode() == node_id
    ]


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    # One run serves every test; a synchronous fixture owns its own event loop.
    return asyncio.run(_run(_scenario(), tmp_path_factory.mktemp("report")))


def _retail(outcome: Outcome, epoch_id: int) -> int:
    start = outcome.scenario.grid.schedule().epoch(epoch_id).start
    return PriceBounds.at(outcome.scenario.tariff, start).retail


def _check_settlement(outcome: Outcome, delivery: dict[str, Any]) -> None:
    """The refund and the imbalance charge follow settlement.md, and the chain's leaf
    carries the measured delivery."""
    trade = outcome.trades[delivery["trade_id"]]
    contracted, delivered = delivery["contracted_wh"], delivery["delivered_wh"]
    undelivered = contracted - delivered
    assert delivery["refund"] == trade["value"] * undelivered // contracted
    assert delivery["imbalance_charge"] == undelivered * _retail(outcome, trade["epoch_id"]) // 1000
    assert outcome.leaves[trade["id"]]["delivered_wh"] == delivered


def test_a_delivered_and_an_under_delivered_trade_settle_correctly(outcome: Outcome) -> None:
    assert outcome.deliveries, "physical trades were planned"
    full = [
        d
        for d in outcome.deliveries
        if d["state"] == "settled" and d["delivered_wh"] == d["contracted_wh"]
    ]
    short = [
        d
        for d in outcome.deliveries
        if d["delivered_wh"] is not None and d["delivered_wh"] < d["contracted_wh"]
    ]
    assert full, "at least one trade delivered in full"
    assert short, "at least one trade under-delivered"
    for d in full:
        assert (d["refund"], d["imbalance_charge"]) == (0, 0)
    for d in outcome.deliveries:
        _check_settlement(outcome, d)
    # Every measured delivery was settled on chain (refunded ones as wholly undelivered).
    assert {d["state"] for d in outcome.deliveries} <= {"settled", "refunded"}
    settlement = outcome.run.settlement
    assert settlement is not None
    assert set(settlement.by_status) == {"confirmed"}


def test_every_fault_ends_as_documented(outcome: Outcome) -> None:
    """A device that never acked refunds its trades on timeout, one that tripped on fault;
    one that delivered half shows in its owner's meter."""
    by_trade = {d["trade_id"]: d for d in outcome.deliveries}
    seen: set[DeviceFault] = set()
    for device in outcome.fleet.devices.values():
        for epoch_id, fault in device.faults.items():
            trades = {
                tid
                for tid, d in by_trade.items()
                if d["epoch_id"] == epoch_id
                and device.member.session.user_id in (d["buyer"], d["seller"])
            }
            runs = [r for r in device.done if r.epoch_id == epoch_id]
            if fault is DeviceFault.NO_ACK:
                seen.add(fault)
                assert not runs
                planned = [t for t in trades if by_trade[t]["state"] == "refunded"]
                assert planned, "a silent device's trade is refunded"
                assert any(by_trade[t]["reason"].startswith("timeout") for t in planned)
            elif fault is DeviceFault.TRIP:
                seen.add(fault)
                for run in runs:
                    assert by_trade[run.trade_id]["state"] == "refunded"
                    assert by_trade[run.trade_id]["reason"].startswith("fault")
                    assert by_trade[run.trade_id]["delivered_wh"] == 0
            elif fault is DeviceFault.PARTIAL:
                seen.add(fault)
                for run in runs:
                    assert run.done_wh < abs(run.energy_wh)
    assert seen == set(DeviceFault), f"the plan's faults all happened: {seen}"
    figures = outcome.run.delivery
    assert figures is not None
    assert figures.commands["failed"] >= 1
    assert figures.devices_at_risk >= 1
    assert figures.trips_reported >= 1


def test_off_chain_books_match_the_chain(outcome: Outcome) -> None:
    for user_id, (credit, energy, chain_credit, chain_energy) in outcome.books.items():
        assert (credit, energy) == (chain_credit, chain_energy), user_id


def test_the_report_figures_add_up(outcome: Outcome) -> None:
    figures = outcome.run.delivery
    assert figures is not None
    measured = [d for d in outcome.deliveries if d["delivered_wh"] is not None]
    assert figures.traded_wh == sum(d["contracted_wh"] for d in measured)
    assert figures.delivered_wh == sum(d["delivered_wh"] for d in measured)
    assert figures.refunds == sum(d["refund"] for d in measured)
    assert figures.imbalance_charges == sum(d["imbalance_charge"] for d in measured)
    assert figures.delivered_in_full + figures.under_delivered == len(measured)
    assert figures.commands["total"] == sum(
        v for k, v in figures.commands.items() if k in ("sent", "acked", "failed")
    )
    json_figures = figures.as_json()
    assert json_figures["imbalance_wh"] == figures.traded_wh - figures.delivered_wh


def test_the_report_shows_the_rewards_the_chain_paid_the_site_node(outcome: Outcome) -> None:
    """The node was bonded and the pool funded through the API; each ended hour was
    reported as the service's worker does; the report's rewards are the chain's."""
    kpis = json.loads((outcome.report_dir / "kpis.json").read_text())
    (node,) = kpis["rewards_per_node"]
    bond, earned, claimed = outcome.node_on_chain
    assert node["node_id"] == outcome.fleet.node_id
    assert (node["bond"], node["earned"], node["claimed"]) == (bond, earned, claimed)
    assert node["pending"] == earned - claimed == 0, "the owner claimed everything"
    # The node applied commands and heartbeated, so it scored and was paid for it.
    assert node["commands_done"] > 0
    assert node["score"] > 0
    assert earned == sum(outcome.rewards_paid) > 0
    # A 12-hour run has 12 one-hour periods; those with activity were reported.
    assert len(outcome.rewards_paid) == node["periods_reported"]
    assert 1 <= node["periods_reported"] <= 12
    page = (outcome.report_dir / "index.html").read_text()
    assert "<h2>Rewards per node</h2>" in page
    assert f"<td>{outcome.fleet.node_id}</td>" in page
    assert f"<td>{format_money(earned)}</td>" in page


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--no-meters"], "--devices needs --meters"),
        (["--url", "http://127.0.0.1:9"], "--devices runs only on the in-process service"),
    ],
)
def test_devices_without_meters_or_against_a_url_is_one_line(
    extra: list[str], message: str, tmp_path: Path
) -> None:
    result = CliRunner().invoke(
        app, ["simulate", "--devices", "--households", "1", "--out", str(tmp_path), *extra]
    )
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line]
    assert lines == [f"wattx: error: {lines[0].removeprefix('wattx: error: ')}"]
    assert message in lines[0]
    assert not (tmp_path / "index.html").exists()
