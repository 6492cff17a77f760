"""A community on two feeders, traded through the in-process service and settled on chain.

Five midday hours, feeder links of 100 Wh per epoch: a limit binds, the two
feeders clear apart, and the congestion rent the ledger reports as settled is
what the fee (grid) account gained on chain beyond the market fees.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wattx.settlement.deploy import DEFAULT_PARAMETERS
from wattx.sim.community import CommunityMix, draw_community
from wattx.sim.feeders import LINK_FLOWS, TwoFeeders
from wattx.sim.runner.grid import (
    ServiceFeederRun,
    run_feeders_in_process,
    write_service_feeder_report,
)
from wattx.sim.scenario import Scenario, build_scenario
from wattx.sim.simulation import run_grid_only
from wattx.sim.strategies import StrategyName
from wattx.sim.timegrid import TimeGrid

TIGHT = TwoFeeders(export_wh=100, import_wh=100)
FREE_WIRES = {p.name: 0 for p in DEFAULT_PARAMETERS if p.name.startswith(("wheeling_", "loss_"))}
"""No wheeling charge or loss between the zones (governed so from the start): a trade's
wheeling fee is its congestion fee."""


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    community = draw_community(CommunityMix(households=6), seed=3)
    return build_scenario(community, TimeGrid(datetime(2026, 6, 1, 9, tzinfo=UTC), 5, 3600))


@pytest.fixture(scope="module")
def feeder_run(scenario: Scenario) -> ServiceFeederRun:
    # One run serves the tests; a synchronous fixture owns its own event loop.
    return asyncio.run(
        run_feeders_in_process(scenario, TIGHT, StrategyName.ZERO_INTELLIGENCE, governed=FREE_WIRES)
    )


def test_members_trade_in_their_feeders_through_the_coupled_auction(
    feeder_run: ServiceFeederRun, scenario: Scenario
) -> None:
    run = feeder_run.run
    assert set(run.zones) == {"transformer", "feeder-a", "feeder-b"}
    assert set(run.answers.orders) <= {"accepted", "no_tokens"}
    assert run.answers.orders["accepted"] > 0
    assert sum(m.traded_wh for m in run.results.market) > 0
    # Every link direction of every closed epoch is reported with the capacity the API set.
    links = feeder_run.feeders.links
    assert len(links) == 4 * len(feeder_run.feeders.zone_prices)
    for row in links:
        assert row.capacity_wh == 100
        assert 0 <= row.flow_wh <= row.capacity_wh


def test_a_limit_binds_and_the_feeders_clear_apart(feeder_run: ServiceFeederRun) -> None:
    binding = [row for row in feeder_run.feeders.links if row.shadow_price > 0]
    assert binding, "a 100 Wh feeder link binds at midday"
    for row in binding:
        assert row.flow_wh == row.capacity_wh
        prices = feeder_run.feeders.zone_prices[row.epoch_id]
        a, b = prices["feeder-a"], prices["feeder-b"]
        assert a is not None
        assert b is not None
        # Across the binding path the feeders' prices differ by its shadow price.
        assert abs(a - b) >= row.shadow_price - 1 > 0
    assert feeder_run.split_price_epochs()


def test_the_rent_is_settled_on_chain_to_the_grid_account(feeder_run: ServiceFeederRun) -> None:
    settlement = feeder_run.run.settlement
    assert settlement is not None
    assert set(settlement.by_status) == {"confirmed"}
    rent = feeder_run.rent_settled
    assert rent > 0
    # The ledger's rent is the rent the auctions reported for the settled epochs ...
    reported = sum(row.rent for row in feeder_run.feeders.links)
    assert rent == reported
    # ... and, with free wires, exactly the settled trades' wheeling fees.
    assert feeder_run.wheeling_fees_settled == rent
    for epoch in feeder_run.settled_epochs():
        assert str(epoch["tx_hash"]).startswith("0x")
    # On chain the fee (grid) account gained every settled fee: the market fees and
    # exactly the rent.
    assert feeder_run.fee_account_growth == settlement.fees
    assert feeder_run.fee_account_growth - feeder_run.market_fees_settled == rent


def test_the_report_draws_the_services_flows_and_the_settled_rent(
    feeder_run: ServiceFeederRun, scenario: Scenario, tmp_path: Path
) -> None:
    write_service_feeder_report(feeder_run, run_grid_only(scenario), tmp_path)
    assert (tmp_path / LINK_FLOWS).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((tmp_path / "kpis.json").read_text())
    settled = data["settlement"]
    assert settled["rent_settled_on_chain"] == feeder_run.rent_settled
    assert sum(settled["rent_settled_per_link"].values()) == feeder_run.rent_settled
    assert data["congestion"]["rent"] == feeder_run.rent_settled
    assert data["market"]["congestion_rent_settled"] == feeder_run.rent_settled
    page = (tmp_path / "index.html").read_text()
    assert "Congestion rent settled on chain" in page
    for epoch in feeder_run.settled_epochs():
        assert str(epoch["tx_hash"]) in page
