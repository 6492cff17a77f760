"""A run against a live wattx service (``wattx simulate --url``), on the service's own clock.

A live service closes gates on its own clock and settles epochs with its chain
worker, and other participants may trade on it, so the run cannot jump time:
it follows the wall clock, uses the service's epoch length and gate-closure
lead (read from ``GET /api/v1/epochs``), and simulates the epochs that are
still ahead, starting at the first one it can quote for once set-up is done.
Weather, production and loads are those of those real dates. Each gate is
closed at its gate time, never early. The operator account signs members up,
admits them and funds them, as in the in-process run.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from wattx.domain import EpochSchedule
from wattx.sim.community import Community
from wattx.sim.errors import SimulationConfigError
from wattx.sim.runner.client import API, ServiceClient, Session
from wattx.sim.runner.clock import WallClock
from wattx.sim.runner.faults import FaultPlan
from wattx.sim.runner.meters import ReadingTransport
from wattx.sim.runner.provision import EnergySource
from wattx.sim.runner.run import (
    QUOTE_LEAD_S,
    READ_DELAY_S,
    MechanismRun,
    ProgressHook,
    first_reachable_epoch,
    run_against,
)
from wattx.sim.scenario import Scenario, build_scenario
from wattx.sim.strategies import StrategyName
from wattx.sim.timegrid import SECONDS_PER_DAY, TimeGrid

SETUP_S = 2.0
SETUP_S_PER_MEMBER = 0.5
"""Set-up time the run plans for before its first quote (sign-up, admission, deposit,
login, meter); if set-up takes longer (a service's rate limit on sign-ups and logins
paces a large community), the run starts at a later epoch."""
REQUEST_TIMEOUT_S = 60.0
SERVICE_WAIT_S = 120.0
"""How long a run waits by default for the service to answer ready (``GET /readyz``)."""
SERVICE_POLL_S = 1.0


class ServiceUnreachableError(SimulationConfigError):
    """The service at the run's URL did not answer ready within the wait."""

    code = "simulation_service_unreachable"
    title = "Service not reachable"


@dataclass(frozen=True, slots=True)
class RemoteRun:
    scenario: Scenario
    run: MechanismRun


async def service_schedule(client: ServiceClient, operator: Session) -> EpochSchedule:
    """The service's epoch length and gate-closure lead, from its current epoch."""
    body = await client.require("GET", f"{API}/epochs", operator, params={"limit": 1})
    current = body["current"]
    start = datetime.fromisoformat(current["start"])
    end = datetime.fromisoformat(current["end"])
    gate = datetime.fromisoformat(current["gate_closure"])
    return EpochSchedule(
        length_s=int((end - start).total_seconds()),
        gate_closure_lead_s=int((start - gate).total_seconds()),
    )


def live_quote_lead_s(schedule: EpochSchedule) -> int:
    """How long before a gate the agents quote: half the time the gate lead and the
    meters' read delay leave in an epoch (the other half is for the readings),
    at most :data:`QUOTE_LEAD_S`."""
    slack = schedule.length_s - schedule.gate_closure_lead_s - READ_DELAY_S
    lead = min(QUOTE_LEAD_S, slack // 2)
    if lead < 1:
        raise SimulationConfigError(
            "the service's epochs leave no time to quote between gate closure and readings",
            length_s=schedule.length_s,
            gate_closure_lead_s=schedule.gate_closure_lead_s,
        )
    return lead


async def wait_for_service(
    http: httpx.AsyncClient,
    wait_s: float,
    on_waiting: Callable[[str], None] | None = None,
    poll_s: float = SERVICE_POLL_S,
) -> None:
    """Return once ``GET /readyz`` answers 200; until then, say once what the run waits for.

    A service still starting (connection refused, or not ready yet) is waited
    for up to ``wait_s`` seconds; then :class:`ServiceUnreachableError`.
    """
    deadline = time.monotonic() + wait_s
    said = False
    while True:
        try:
            answer = await http.get("/readyz", timeout=max(poll_s, 1.0))
            if answer.status_code == 200:
                return
            why = f"it answers {answer.status_code} on /readyz"
        except httpx.HTTPError as exc:
            why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if time.monotonic() >= deadline:
            raise ServiceUnreachableError(
                f"the service at {http.base_url} is not ready after {wait_s:g} s ({why})",
                url=str(http.base_url),
                wait_s=wait_s,
            )
        if not said and on_waiting is not None:
            on_waiting(
                f"waiting for the service at {http.base_url} to answer ready "
                f"(GET /readyz; {why}), up to {wait_s:g} s"
            )
            said = True
        await asyncio.sleep(poll_s)


async def run_remote(
    url: str,
    operator_email: str,
    operator_password: str,
    community: Community,
    mechanism: str,
    strategy: StrategyName,
    *,
    epochs: int | None = None,
    days: int = 1,
    faults: FaultPlan | None = None,
    transport: ReadingTransport = ReadingTransport.CONCENTRATOR,
    progress: ProgressHook | None = None,
    on_wait: Callable[[datetime], None] | None = None,
    announce: Callable[[str], None] | None = None,
    service_wait_s: float = SERVICE_WAIT_S,
) -> RemoteRun:
    """Simulate ``community`` on the service at ``url`` in real time.

    The run lasts ``epochs`` of the service's epochs, or ``days`` days of them.
    ``announce`` hears once which epochs the run trades and when its first
    quotes go in; ``on_wait`` hears each time the run waits for a quoting or
    gate time (with that time). A service that is not ready yet is waited for up
    to ``service_wait_s`` seconds (``announce`` hears what the run waits for).
    """
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S) as http:
        await wait_for_service(http, service_wait_s, announce)
        client = ServiceClient(http)
        operator = await client.login(operator_email, operator_password)
        schedule = await service_schedule(client, operator)
        quote_lead_s = live_quote_lead_s(schedule)
        if epochs is None:
            epochs = days * SECONDS_PER_DAY // schedule.length_s
        if epochs <= 0:
            raise SimulationConfigError("a run needs at least one epoch", epochs=epochs)
        clock = WallClock(on_wait)
        setup = timedelta(seconds=SETUP_S + SETUP_S_PER_MEMBER * len(community.members))
        first = first_reachable_epoch(schedule, clock, quote_lead_s)
        first += math.ceil(setup.total_seconds() / schedule.length_s)
        try:
            grid = TimeGrid(schedule.epoch(first).start, epochs, schedule.length_s)
        except SimulationConfigError as exc:
            raise SimulationConfigError(
                "the service's epoch length must divide a day", length_s=schedule.length_s
            ) from exc
        scenario = build_scenario(community, grid)
        if announce is not None:
            gate = schedule.epoch(first).gate_closure
            quotes = gate - timedelta(seconds=quote_lead_s)
            announce(
                f"trading epochs {first} to {first + epochs - 1} of the service "
                f"({schedule.length_s // 60} min each): the first quotes go in at "
                f"{quotes:%H:%M:%S} UTC, {quote_lead_s} s before that epoch's gate closes "
                f"at {gate:%H:%M:%S} UTC; until then the run waits"
            )
        run = await run_against(
            client,
            operator,
            scenario,
            mechanism,
            strategy,
            clock,
            schedule,
            progress=progress,
            faults=faults,
            quote_lead_s=quote_lead_s,
            transport=transport,
            gates_close_on_time=True,
            # The service's own chain worker mints as it goes, unseen by the runner's
            # count of each seller's tokens: sellers are covered by grants.
            energy=EnergySource.GRANTS,
        )
        return RemoteRun(scenario, run)
