"""The community in motion: agents quote before each epoch, physics and accounts after it.

:class:`CommunitySimulation` is driven epoch by epoch by whoever runs the market:

1. ``order_intents(index, progress, reference_price)`` — each member's agent
   quotes for epoch ``index`` from its forecast and its battery's current state
   (call again with a later ``progress`` to re-quote, e.g. for :class:`Ramping`);
2. the caller matches the intents (through the service, or not at all);
3. ``deliver(index, fills)`` — the epoch happens: actual production and
   consumption, the battery dispatched to hold the metered net export at the
   traded position as far as it can, and the grid settling the deviation at the
   band's tariffs.

With no fills the dispatch rule reduces to plain self-consumption (store
surplus, cover deficit), which is the grid-only baseline
(:func:`run_grid_only`).
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

from wattx.sim.agents import OrderIntent, TradingAgent
from wattx.sim.battery import Battery, BatteryFlow
from wattx.sim.bounds import PriceBounds
from wattx.sim.community import HouseholdKind, HouseholdSpec
from wattx.sim.errors import SimulationConfigError, StepOrderError
from wattx.sim.results import (
    NO_FILLS,
    EpochMarketRecord,
    LocalFills,
    MemberEpochRecord,
    RunResults,
)
from wattx.sim.scenario import Scenario
from wattx.sim.seeding import random_stream
from wattx.sim.storage_policy import StoragePolicy, StoreFirst, default_arbitrage, storage_value
from wattx.sim.strategies import StrategyName, make_strategy
from wattx.units import trade_value

GRID_ONLY = "grid_only"


class CommunitySimulation:
    """The mutable state of one run: batteries, progress and the records so far."""

    def __init__(
        self,
        scenario: Scenario,
        strategy: StrategyName = StrategyName.ZERO_INTELLIGENCE,
        mechanism: str = GRID_ONLY,
        initial_soc_ppm: int = 500_000,
    ) -> None:
        self.scenario = scenario
        grid = scenario.grid
        self.batteries: dict[str, Battery] = {}
        self.agents: dict[str, TradingAgent] = {}
        for spec in scenario.community.members:
            if spec.battery is not None:
                span = spec.battery.soc_max_wh - spec.battery.soc_min_wh
                soc = spec.battery.soc_min_wh + span * initial_soc_ppm // 1_000_000
                self.batteries[spec.id] = Battery(spec.battery, soc)
            rng = random_stream(scenario.seed, "agent", spec.id)
            self.agents[spec.id] = TradingAgent(
                spec.id, make_strategy(strategy, rng), self._policy_for(spec)
            )
        self.bounds = [
            PriceBounds.at(scenario.tariff, grid.step_start(i)) for i in range(grid.steps)
        ]
        self.results = RunResults(
            mechanism=mechanism,
            grid=grid,
            member_kinds={spec.id: spec.kind for spec in scenario.community.members},
            bounds=self.bounds,
        )
        self.delivered_steps = 0

    def _policy_for(self, spec: HouseholdSpec) -> StoragePolicy | None:
        if spec.battery is None:
            return None
        if spec.kind is HouseholdKind.COMMUNITY_BATTERY:
            return default_arbitrage(self.scenario.tariff)
        return StoreFirst(sell_threshold=storage_value(self.scenario.tariff, spec.battery))

    def order_intents(
        self, index: int, progress: Fraction = Fraction(0), reference_price: int | None = None
    ) -> list[OrderIntent]:
        """Every member's order for step ``index`` (members with nothing to trade are absent)."""
        bounds = self.bounds[index]
        signal = bounds.clamp(reference_price) if reference_price is not None else bounds.midpoint
        if reference_price is not None:
            self.results.last_reference_price = signal
        epoch_id = self.scenario.grid.epoch_id(index)
        step_s = self.scenario.grid.step_s
        intents = []
        for member_id, agent in self.agents.items():
            series = self.scenario.series[member_id]
            forecast = int(series.production_forecast_wh[index]) - int(
                series.consumption_forecast_wh[index]
            )
            plan = agent.storage_plan(forecast, self.batteries.get(member_id), step_s, signal)
            intent = agent.intent(epoch_id, forecast, plan, bounds, reference_price, progress)
            if intent is not None:
                intents.append(intent)
        return intents

    def deliver(
        self,
        index: int,
        fills: Mapping[str, LocalFills] | None = None,
        market: EpochMarketRecord | None = None,
    ) -> list[MemberEpochRecord]:
        """Run step ``index`` physically and settle it; steps must be delivered in order."""
        if index != self.delivered_steps:
            raise StepOrderError(
                "steps are delivered in order", expected=self.delivered_steps, got=index
            )
        fills = fills or {}
        unknown = set(fills) - set(self.agents)
        if unknown:
            raise SimulationConfigError("fills for unknown members", members=sorted(unknown))
        bounds = self.bounds[index]
        epoch_id = self.scenario.grid.epoch_id(index)
        records = [
            self._settle_member(member_id, index, epoch_id, fills.get(member_id, NO_FILLS), bounds)
            for member_id in self.agents
        ]
        self.results.records.extend(records)
        if market is not None:
            self.results.market.append(market)
        self.delivered_steps += 1
        return records

    def _settle_member(
        self, member_id: str, index: int, epoch_id: int, fills: LocalFills, bounds: PriceBounds
    ) -> MemberEpochRecord:
        series = self.scenario.series[member_id]
        production = int(series.production_wh[index])
        consumption = int(series.consumption_wh[index])
        flow = self._dispatch(member_id, production - consumption, fills.position_wh)
        metered_export = production - consumption - flow.accepted_wh + flow.delivered_wh
        deviation = metered_export - fills.position_wh
        grid_export, grid_import = max(deviation, 0), max(-deviation, 0)
        return MemberEpochRecord(
            member_id=member_id,
            epoch_id=epoch_id,
            production_wh=production,
            consumption_wh=consumption,
            battery_change_wh=flow.soc_change_wh,
            losses_wh=flow.loss_wh,
            local_bought_wh=fills.bought_wh,
            local_sold_wh=fills.sold_wh,
            local_paid=fills.paid,
            local_earned=fills.earned,
            grid_import_wh=grid_import,
            grid_export_wh=grid_export,
            grid_paid=trade_value(grid_import, bounds.retail),
            grid_earned=trade_value(grid_export, bounds.feed_in),
        )

    def _dispatch(self, member_id: str, natural_net_wh: int, position_wh: int) -> BatteryFlow:
        """Charge or discharge so the metered net export meets the traded position."""
        battery = self.batteries.get(member_id)
        if battery is None:
            return BatteryFlow()
        step_s = self.scenario.grid.step_s
        shortfall = position_wh - natural_net_wh
        if shortfall > 0:
            return battery.discharge(shortfall, step_s)
        if shortfall < 0:
            return battery.charge(-shortfall, step_s)
        return BatteryFlow()


def run_grid_only(scenario: Scenario) -> RunResults:
    """The baseline: no local market, every member trades with the grid at the tariffs."""
    simulation = CommunitySimulation(scenario, mechanism=GRID_ONLY)
    for index in range(scenario.grid.steps):
        simulation.deliver(index)
    return simulation.results
