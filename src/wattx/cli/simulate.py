"""``wattx simulate`` and ``wattx demo``: the community model trading through the service."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wattx.domain import EpochSchedule
from wattx.sim.community import CommunityMix, draw_community
from wattx.sim.scenario import Scenario, build_scenario
from wattx.sim.strategies import StrategyName
from wattx.sim.timegrid import TimeGrid

if TYPE_CHECKING:
    from wattx.sim.runner.faults import FaultPlan
    from wattx.sim.runner.meters import ReadingTransport
    from wattx.sim.runner.run import MechanismRun

DEMO_RUN_TAG = "demo"
DEMO_QUOTE_LEAD_S = 540
"""The demo's agents quote nine minutes before gate closure: its clock does not wait for them."""


class MechanismChoice(StrEnum):
    CONTINUOUS = "continuous"
    CALL_AUCTION = "call_auction"
    PAY_AS_BID = "pay_as_bid"
    GRID_ONLY = "grid_only"


def register(app: typer.Typer) -> None:
    """Add ``simulate`` and ``demo`` to the ``wattx`` app."""
    app.command("simulate")(simulate)
    app.command("demo")(demo)


DEFAULT_START = date(2026, 6, 1)
DEFAULT_EPOCH_MINUTES = 15


class TransportChoice(StrEnum):
    CONCENTRATOR = "concentrator"
    PER_METER = "per_meter"


def build(
    households: int,
    days: int,
    start: date,
    seed: int,
    epoch_minutes: int,
    epochs: int | None = None,
) -> Scenario:
    """The scenario of ``days`` days from ``start``, or of its first ``epochs`` epochs."""
    community = draw_community(CommunityMix(households=households), seed=seed)
    grid = TimeGrid.for_days(start, days, EpochSchedule(epoch_minutes * 60))
    if epochs is not None:
        grid = TimeGrid(grid.start, min(epochs, grid.steps), grid.step_s)
    return build_scenario(community, grid)


def simulate(
    households: Annotated[int, typer.Option(min=1, help="number of households")] = 100,
    days: Annotated[int, typer.Option(min=1, help="simulated days")] = 7,
    start: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="first day [default: 2026-06-01]"),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of every random draw")] = 1,
    out: Annotated[Path, typer.Option(help="report directory")] = Path("report"),
    mechanism: Annotated[MechanismChoice, typer.Option()] = MechanismChoice.CALL_AUCTION,
    strategy: Annotated[StrategyName, typer.Option()] = StrategyName.ZERO_INTELLIGENCE,
    compare: Annotated[bool, typer.Option(help="run every mechanism")] = False,
    epoch_minutes: Annotated[
        int | None, typer.Option(min=10, help="epoch length [default: 15]")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="run only the first EPOCHS epochs of the days")
    ] = None,
    meters: Annotated[bool, typer.Option(help="virtual meters send signed readings")] = True,
    fault_ppm: Annotated[
        int, typer.Option(min=0, max=200_000, help="probability of each meter fault, ppm")
    ] = 0,
    transport: Annotated[
        TransportChoice,
        typer.Option(
            help="meters' readings through the community's data concentrator "
            "(POST /readings/batch) or each meter's own POST"
        ),
    ] = TransportChoice.CONCENTRATOR,
    url: Annotated[
        str | None,
        typer.Option(
            help="run against this running service (wattx up) in real time, on its "
            "epoch length and clock, instead of an in-process one"
        ),
    ] = None,
    operator_email: Annotated[
        str | None,
        typer.Option(envvar="WATTX_SIM_OPERATOR_EMAIL", help="operator login for --url"),
    ] = None,
    operator_password: Annotated[
        str | None,
        typer.Option(envvar="WATTX_SIM_OPERATOR_PASSWORD", help="operator password for --url"),
    ] = None,
) -> None:
    """Simulate a community trading through the service and write the report.

    By default the service runs in-process on a scratch database with a
    virtual clock, so the days pass as fast as the service answers. With
    --url the run targets a running service over HTTP as its operator: it
    follows the service's own clock and epoch length (the run takes real
    time: --days days, or --epochs epochs), simulates the epochs starting
    now (so --start and --epoch-minutes do not apply, nor --compare), and
    closes each gate at its gate time.
    """
    from rich.progress import Progress, TaskID

    from wattx.sim.runner.compare import write_comparison, write_mechanism_report
    from wattx.sim.runner.faults import FaultPlan
    from wattx.sim.runner.meters import ReadingTransport
    from wattx.sim.runner.run import ALL_MECHANISMS, run_in_process
    from wattx.units import format_money

    faults = FaultPlan.each(fault_ppm) if meters else None
    reading_transport = ReadingTransport(transport.value)
    runs: dict[str, MechanismRun]
    if url is not None:
        _check_remote_options(url, start, epoch_minutes, compare, mechanism)
        if not operator_email or not operator_password:
            raise typer.BadParameter(
                "--url needs --operator-email and --operator-password "
                "(or WATTX_SIM_OPERATOR_EMAIL and WATTX_SIM_OPERATOR_PASSWORD)"
            )
        runs = _simulate_remote(
            url,
            operator_email,
            operator_password,
            households,
            days,
            epochs,
            seed,
            mechanism.value,
            strategy,
            faults,
            reading_transport,
        )
        chosen = [mechanism.value]
    else:
        scenario = build(
            households,
            days,
            (start or datetime.combine(DEFAULT_START, datetime.min.time())).date(),
            seed,
            epoch_minutes or DEFAULT_EPOCH_MINUTES,
            epochs,
        )
        chosen = list(ALL_MECHANISMS) if compare else [mechanism.value]
        steps = scenario.grid.steps
        runs = {}
        with Progress() as progress:
            for name in ["grid_only", *[m for m in chosen if m != "grid_only"]]:
                task = progress.add_task(name, total=steps)

                def advance(done: int, task_id: TaskID = task) -> None:
                    progress.update(task_id, completed=done)

                runs[name] = asyncio.run(
                    run_in_process(
                        scenario,
                        name,
                        strategy,
                        progress=advance,
                        faults=faults,
                        transport=reading_transport,
                    )
                )
    baseline = runs["grid_only"]
    reports = {}
    for name in chosen:
        target = out / name if compare else out
        reports[name] = write_mechanism_report(runs[name], baseline, target)
        community = reports[name].community
        typer.echo(f"{name}: {reports[name].balance.describe()}")
        typer.echo(
            f"{name}: net cost {format_money(community.net_cost)}, "
            f"members worse off {community.members_worse_off}"
        )
    if compare:
        write_comparison(reports, out)
    typer.echo(f"report written to {out / 'index.html'}")


def _check_remote_options(
    url: str,
    start: datetime | None,
    epoch_minutes: int | None,
    compare: bool,
    mechanism: MechanismChoice,
) -> None:
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter("--url is the service's base URL, http:// or https://")
    if start is not None:
        raise typer.BadParameter(
            "with --url the run starts now, on the service's clock: no --start"
        )
    if epoch_minutes is not None:
        raise typer.BadParameter(
            "with --url the service's epoch length applies: no --epoch-minutes"
        )
    if compare:
        raise typer.BadParameter("--compare needs the in-process service (runs in real time)")
    if mechanism is MechanismChoice.GRID_ONLY:
        raise typer.BadParameter("grid_only trades nothing: run it without --url")


def _simulate_remote(
    url: str,
    operator_email: str,
    operator_password: str,
    households: int,
    days: int,
    epochs: int | None,
    seed: int,
    mechanism: str,
    strategy: StrategyName,
    faults: FaultPlan | None,
    transport: ReadingTransport,
) -> dict[str, MechanismRun]:
    """One real-time run on the service at ``url``, and its grid-only baseline."""
    from rich.progress import Progress

    from wattx.sim.runner.market_round import OrderAnswers
    from wattx.sim.runner.remote import run_remote
    from wattx.sim.runner.run import MechanismRun
    from wattx.sim.simulation import run_grid_only

    community = draw_community(CommunityMix(households=households), seed=seed)
    with Progress() as progress:
        task = progress.add_task(f"{mechanism} at {url}", total=epochs)

        def advance(done: int) -> None:
            progress.update(task, completed=done)

        remote = asyncio.run(
            run_remote(
                url,
                operator_email,
                operator_password,
                community,
                mechanism,
                strategy,
                epochs=epochs,
                days=days,
                faults=faults,
                transport=transport,
                progress=advance,
            )
        )
    baseline = MechanismRun(run_grid_only(remote.scenario), OrderAnswers(), 0)
    return {"grid_only": baseline, mechanism: remote.run}


def demo(
    households: Annotated[int, typer.Option(min=1, help="number of households")] = 8,
    speed: Annotated[float, typer.Option(help="simulated seconds per wall second")] = 60.0,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    days: Annotated[int, typer.Option(min=1)] = 1,
    seed: Annotated[int, typer.Option()] = 1,
    strategy: Annotated[StrategyName, typer.Option()] = StrategyName.ZERO_INTELLIGENCE,
) -> None:
    """Serve the API with a small community trading in it, SPEED times faster than real time."""
    asyncio.run(_demo(households, speed, host, port, days, seed, strategy))


async def _demo(
    households: int,
    speed: float,
    host: str,
    port: int,
    days: int,
    seed: int,
    strategy: StrategyName,
) -> None:
    import tempfile

    import httpx
    import uvicorn

    from wattx.api.app import create_app
    from wattx.api.server import server_config
    from wattx.api.state import AppState
    from wattx.services.zones import ZoneService
    from wattx.sim.runner.client import ServiceClient
    from wattx.sim.runner.clock import AcceleratedClock
    from wattx.sim.runner.faults import FaultPlan
    from wattx.sim.runner.provision import MEMBER_PASSWORD, EnergySource, member_email
    from wattx.sim.runner.run import check_schedule, run_against
    from wattx.sim.runner.scratch import OPERATOR_EMAIL, OPERATOR_PASSWORD, scratch_settings
    from wattx.store import Database, upgrade_to_head

    # The simulated days end before today: the service checks a token's issue
    # time against the wall clock, so the accelerated clock must stay behind it.
    first_day = datetime.now(UTC).date() - timedelta(days=days + 1)
    scenario = build(households, days, first_day, seed, 15)
    schedule = scenario.grid.schedule()
    check_schedule(schedule, DEMO_QUOTE_LEAD_S)
    first_gate = schedule.epoch(scenario.grid.first_epoch_id).gate_closure
    # The clock starts early enough for the set-up to finish before the first quotes.
    clock = AcceleratedClock(first_gate - timedelta(seconds=2 * DEMO_QUOTE_LEAD_S), speed)
    with tempfile.TemporaryDirectory(prefix="wattx-demo-") as tmp:
        settings = scratch_settings(Path(tmp), schedule).model_copy(
            update={"host": host, "port": port}
        )
        db = Database(settings.effective_database_url)
        try:
            await upgrade_to_head(db)
            # Like ``wattx up``: the service starts with its default zone.
            await ZoneService(db, clock).seed_default(
                settings.seed_zone_id, settings.seed_zone_name
            )
        finally:
            await db.dispose()
        app = create_app(settings, clock=clock, run_epoch_clock=True)
        server = uvicorn.Server(server_config(app, settings, lifespan="on"))
        serving = asyncio.create_task(server.serve())
        while not server.started:
            if serving.done():
                serving.result()
            await asyncio.sleep(0.05)
        state: AppState = app.state.wattx
        await state.accounts.create_operator(
            email=OPERATOR_EMAIL, password=OPERATOR_PASSWORD, display_name="Operator"
        )
        url = f"http://{host}:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
            client = ServiceClient(http)
            operator = await client.login(OPERATOR_EMAIL, OPERATOR_PASSWORD)
            typer.echo(f"wattx demo at {url} (API docs: {url}/docs), {speed:g}x real time")
            typer.echo(f"operator login: {OPERATOR_EMAIL} / {OPERATOR_PASSWORD}")
            for spec in scenario.community.members[:3]:
                login = member_email(spec.id, DEMO_RUN_TAG)
                typer.echo(f"{spec.kind} login: {login} / {MEMBER_PASSWORD}")
            try:
                run = await run_against(
                    client,
                    operator,
                    scenario,
                    "continuous",
                    strategy,
                    clock,
                    schedule,
                    run_tag=DEMO_RUN_TAG,
                    faults=FaultPlan(),
                    quote_lead_s=DEMO_QUOTE_LEAD_S,
                    # The demo's chain worker mints on its own clock: grants cover sellers.
                    energy=EnergySource.GRANTS,
                )
                traded = sum(r.local_sold_wh for r in run.results.records)
                answers = dict(run.answers.orders)
                typer.echo(f"demo finished: {traded} Wh traded locally, orders {answers}")
                typer.echo("serving until Ctrl-C")
                await serving
            finally:
                server.should_exit = True
                await serving
