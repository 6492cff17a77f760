"""A whole simulated run against the service: set-up, the epoch loop, the results.

Time runs in the order a real community lives it. Epoch ``k + 1``'s gate
closes before epoch ``k`` ends (the gate-closure lead), so the loop is
pipelined: the orders of epoch ``k + 1`` are placed and its gate closed
:data:`QUOTE_LEAD_S` seconds before its gate time, then epoch ``k`` ends.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from wattx.domain import EpochSchedule
from wattx.sim.errors import SimulationConfigError
from wattx.sim.results import RunResults
from wattx.sim.runner.client import ServiceClient, Session
from wattx.sim.runner.clock import Timekeeper, VirtualClock
from wattx.sim.runner.devices import (
    DeliveryFigures,
    DeviceFaultPlan,
    DeviceFleet,
    NodeRewardFigures,
)
from wattx.sim.runner.faults import FaultPlan
from wattx.sim.runner.ledger import SettlementSummary, settlement_summary
from wattx.sim.runner.market_round import EpochOutcome, MarketRound, OrderAnswers
from wattx.sim.runner.meters import MeterFleet, ReadingAnswers, ReadingTransport
from wattx.sim.runner.provision import (
    EnergySource,
    ZoneLayout,
    create_layout,
    create_zone,
    enrol_members,
)
from wattx.sim.runner.scratch import InProcessDeliveryWorker, in_process_dialer, scratch_service
from wattx.sim.scenario import Scenario
from wattx.sim.simulation import GRID_ONLY, CommunitySimulation, run_grid_only
from wattx.sim.strategies import StrategyName

QUOTE_LEAD_S = 60
"""Agents quote this many seconds before an epoch's gate closes."""

READ_DELAY_S = 5
"""Meters send an epoch's reading this many seconds after it ends."""

MINT_INTERVAL_S = 3600
"""With minted energy, the runner mints this often (each epoch is settled as it ends)."""

MARKET_MECHANISMS = ("continuous", "call_auction", "pay_as_bid")
ALL_MECHANISMS = (*MARKET_MECHANISMS, GRID_ONLY)

ProgressHook = Callable[[int], None]
"""Called with the number of epochs delivered so far."""


@dataclass(frozen=True, slots=True)
class MechanismRun:
    """What one mechanism produced, and how the service answered."""

    results: RunResults
    answers: OrderAnswers
    energy_granted_wh: int
    readings: ReadingAnswers | None = None
    settlement: SettlementSummary | None = None
    epoch_offset: int = 0
    """Service epoch of step ``i`` minus the scenario's: non-zero when set-up overran."""
    energy_minted_wh: int = 0
    """Tokens minted for the members' verified export during the run."""
    zones: dict[str, str] = field(default_factory=dict)
    """With a zone layout: layout name → the service's zone id."""
    clearing_prices: dict[int, dict[str, int | None]] = field(default_factory=dict)
    """Per service epoch, each of the run's zones' clearing price as the gate closure answered."""
    delivery: DeliveryFigures | None = None
    """With devices: commands, physical trades, what was delivered and how it settled."""
    rewards: list[NodeRewardFigures] | None = None
    """With devices: each site node's incentive periods, score and rewards."""


def check_schedule(schedule: EpochSchedule, quote_lead_s: int = QUOTE_LEAD_S) -> None:
    """The pipelined loop needs the next gate to close after this epoch's readings."""
    if schedule.gate_closure_lead_s + quote_lead_s + READ_DELAY_S >= schedule.length_s:
        raise SimulationConfigError(
            "gate-closure lead plus the quoting lead must be shorter than an epoch",
            lead_s=schedule.gate_closure_lead_s,
            length_s=schedule.length_s,
        )


async def run_in_process(
    scenario: Scenario,
    mechanism: str,
    strategy: StrategyName,
    gate_closure_lead_s: int = 300,
    progress: ProgressHook | None = None,
    faults: FaultPlan | None = None,
    transport: ReadingTransport = ReadingTransport.CONCENTRATOR,
    energy: EnergySource | None = None,
    device_faults: DeviceFaultPlan | None = None,
) -> MechanismRun:
    """Run ``mechanism`` on a fresh in-process service with a virtual clock.

    With ``faults`` (``FaultPlan()`` for none), every member's meter sends its
    readings too, through ``transport``; without, the run trades only.
    ``energy`` defaults to minted tokens with meters, grants without. With
    ``device_faults`` (``DeviceFaultPlan()`` for none; needs meters) the
    members' batteries and EV chargers deliver the physical trades.
    """
    if mechanism == GRID_ONLY:
        baseline = run_grid_only(scenario)
        if progress is not None:
            progress(scenario.grid.steps)
        return MechanismRun(baseline, OrderAnswers(), 0)
    schedule = scenario.grid.schedule(gate_closure_lead_s)
    check_schedule(schedule)
    first_gate = schedule.epoch(scenario.grid.first_epoch_id).gate_closure
    clock = VirtualClock(first_gate - timedelta(seconds=QUOTE_LEAD_S))
    async with scratch_service(schedule, clock) as service:
        devices = None
        if device_faults is not None:
            assert service.state is not None
            devices = DeviceFleet(
                in_process_dialer(service.state),
                device_faults,
                worker=InProcessDeliveryWorker(service.state),
            )
        try:
            return await run_against(
                service.client,
                service.operator,
                scenario,
                mechanism,
                strategy,
                clock,
                schedule,
                progress=progress,
                faults=faults,
                transport=transport,
                energy=energy,
                devices=devices,
            )
        finally:
            if devices is not None:
                await devices.stop()


async def run_against(
    client: ServiceClient,
    operator: Session,
    scenario: Scenario,
    mechanism: str,
    strategy: StrategyName,
    clock: Timekeeper,
    schedule: EpochSchedule,
    *,
    progress: ProgressHook | None = None,
    run_tag: str | None = None,
    faults: FaultPlan | None = None,
    quote_lead_s: int = QUOTE_LEAD_S,
    transport: ReadingTransport = ReadingTransport.CONCENTRATOR,
    gates_close_on_time: bool = False,
    energy: EnergySource | None = None,
    enrolled: Callable[[], None] | None = None,
    layout: ZoneLayout | None = None,
    devices: DeviceFleet | None = None,
) -> MechanismRun:
    """Enrol the community in a new zone of the service and trade every epoch.

    With ``layout`` the run creates a grid tree of zones (with their link
    capacities) instead of one zone, and each member trades and meters in its
    layout zone; the agents see the root zone's prices.

    ``enrolled`` is called once the zone exists and every member can sign in,
    before the first order: a demo tells its user where to look only then.

    Agents quote ``quote_lead_s`` before each gate closes; a clock that runs
    on its own (a demo's, a live service's) needs a lead long enough for the
    orders to arrive. On such a clock set-up may take longer than planned: if
    the first epoch's quoting time has passed when it is done, the run trades
    from the first epoch still ahead (``MechanismRun.epoch_offset`` says by
    how many epochs it moved). At the end the run reads the settlement of its
    epochs from the public ledger.

    The simulated operator closes each gate once the orders are in; with
    ``gates_close_on_time`` (a live service others trade on) it waits for the
    gate time first, so no participant loses a second of trading.

    With minted energy (the default when meters report) sellers offer only
    tokens minted from their verified export, and after each epoch's readings
    the operator mints and settles the epoch, as a service's chain worker
    would; with grants the runner tops sellers up off chain.

    With ``devices`` (and meters) the members' batteries and EV chargers are
    registered behind a site node and deliver the physical trades
    (:mod:`wattx.sim.runner.devices`); what they fall short by changes what
    the meters report. Their node's owner bonds it and the operator funds the
    reward pool; the node's incentive periods are reported as they end, and at
    the end the owner claims what the node earned.
    """
    source = energy or (EnergySource.MINTED if faults is not None else EnergySource.GRANTS)
    if source is EnergySource.MINTED and faults is None:
        raise SimulationConfigError("minted energy needs meters that send readings")
    check_schedule(schedule, quote_lead_s)
    run_tag = run_tag or secrets.token_hex(4)
    zones: dict[str, str] = {}
    zone_of: dict[str, str] = {}
    if layout is None:
        zone_id = f"sim-{run_tag}"
        await create_zone(client, operator, zone_id, scenario, mechanism)
    else:
        zones = await create_layout(client, operator, layout, run_tag, scenario, mechanism)
        zone_id = zones[layout.root]
        zone_of = {member: zones[name] for member, name in layout.member_zone.items()}
    members = await enrol_members(client, operator, scenario, run_tag)
    if enrolled is not None:
        enrolled()
    simulation = CommunitySimulation(scenario, strategy, mechanism=mechanism)
    fleet = None
    if faults is not None:
        fleet = MeterFleet(client, members, faults, scenario.seed, transport)
        await fleet.install(operator, scenario, zone_id, run_tag, zone_of)
        if devices is not None:
            await devices.install(
                client,
                operator,
                members,
                fleet.meter_ids,
                clock,
                seed=scenario.seed,
                run_tag=run_tag,
                run_s=scenario.grid.steps * schedule.length_s,
            )
    elif devices is not None:
        raise SimulationConfigError("devices need meters that send readings")
    quote_lead = timedelta(seconds=quote_lead_s)
    offset = first_reachable_epoch(schedule, clock, quote_lead_s) - scenario.grid.first_epoch_id
    market = MarketRound(
        client,
        operator,
        members,
        zone_id,
        simulation,
        epoch_offset=max(offset, 0),
        seed=scenario.seed,
        energy=source,
        zone_of=zone_of,
    )

    async def trade(index: int) -> EpochOutcome:
        gate = schedule.epoch(market.service_epoch(index)).gate_closure
        await clock.advance_to(gate - quote_lead)
        if not gates_close_on_time:
            traded = await market.trade(index)
        else:
            traded = await market.trade(index, partial(clock.advance_to, gate))
        if devices is not None:
            await devices.gate_closed()
        return traded

    steps = scenario.grid.steps
    # Minting costs a deposit transaction per owner: once an hour, not every epoch.
    mint_every = max(1, MINT_INTERVAL_S // schedule.length_s)
    outcome = await trade(0)
    read_delay = timedelta(seconds=READ_DELAY_S)
    for index in range(steps):
        records = simulation.deliver(index, outcome.fills, outcome.market)
        if index + 1 < steps:
            outcome = await trade(index + 1)
        if fleet is not None:
            epoch_end = schedule.epoch(market.service_epoch(index)).end
            await clock.advance_to(epoch_end + read_delay)
            change = None
            if devices is not None:
                change = await devices.epoch_ended(market.service_epoch(index))
            await fleet.report(epoch_end, records, change)
            if source is EnergySource.MINTED:
                due = (index + 1) % mint_every == 0 or index + 1 == steps
                await market.mint_and_settle(index, mint=due)
        if progress is not None:
            progress(index + 1)
    if fleet is not None:
        await fleet.flush()
    settlement = await settlement_summary(
        client, market.service_epoch(0), market.service_epoch(steps - 1)
    )
    figures = None
    rewards = None
    if devices is not None:
        figures = await devices.figures(market.service_epoch(0), market.service_epoch(steps - 1))
        rewards = await devices.rewards()
        await devices.stop()
    return MechanismRun(
        simulation.results,
        market.answers,
        market.granted_wh,
        fleet.answers if fleet is not None else None,
        settlement,
        max(offset, 0),
        market.minted_wh,
        zones,
        market.clearing_prices,
        figures,
        rewards,
    )


def first_reachable_epoch(schedule: EpochSchedule, clock: Timekeeper, quote_lead_s: int) -> int:
    """The first epoch whose quoting time (``quote_lead_s`` before its gate) is not past."""
    now = clock.now()
    epoch_id = schedule.epoch_id_at(now)
    while schedule.epoch(epoch_id).gate_closure - timedelta(seconds=quote_lead_s) < now:
        epoch_id += 1
    return epoch_id
