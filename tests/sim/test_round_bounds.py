"""Orders a run sends lie within the bounds of the service epoch they are for, also when
the run trades some epochs later than the simulated steps (set-up took longer than
planned), across a change of time-of-use band."""

from __future__ import annotations

import httpx

from wattx.sim.runner.client import ServiceClient, Session
from wattx.sim.runner.market_round import MarketRound
from wattx.sim.scenario import Scenario
from wattx.sim.simulation import CommunitySimulation


async def test_a_quote_is_clamped_to_the_bounds_of_the_service_epoch(
    small_scenario: Scenario,
) -> None:
    grid = small_scenario.grid
    tariff = small_scenario.tariff
    first = grid.first_epoch_id
    steps_per_hour = 3_600 // grid.step_s
    # The scenario's first step is at midnight; seventeen hours later the evening band.
    night = tariff.band_at(grid.step_start(0).hour)
    evening_epoch = first + 17 * steps_per_hour
    evening = tariff.band_at(17)
    assert evening.feed_in > night.feed_in, "the default tariff raises feed-in by day"
    async with httpx.AsyncClient() as http:
        market = MarketRound(
            ServiceClient(http),
            Session("op", "op@example.org", "a", "r"),
            [],
            "sim-test",
            CommunitySimulation(small_scenario),
            epoch_offset=17 * steps_per_hour,
        )
        # Quoted within the night band (its floor), sent for the evening epoch.
        assert market._within_bounds(night.feed_in, evening_epoch) == evening.feed_in
        assert market._within_bounds(night.feed_in, first) == night.feed_in
        assert market._within_bounds(10**9, evening_epoch) == evening.retail
