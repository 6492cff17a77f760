"""``wattx simulate`` and ``wattx demo``: the community model trading through the service."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wattx.cli.configuration import load_settings
from wattx.domain import EpochSchedule
from wattx.sim.strategies import StrategyName

if TYPE_CHECKING:
    # The community model loads pandas and pvlib: only the commands that run it do.
    from wattx.api.state import AppState
    from wattx.sim.community import CommunityMix
    from wattx.sim.runner.faults import FaultPlan
    from wattx.sim.runner.meters import ReadingTransport
    from wattx.sim.runner.run import MechanismRun
    from wattx.sim.scenario import Scenario

DEMO_RUN_TAG = "demo"
DEMO_QUOTE_LEAD_S = 540
"""The demo's agents quote nine minutes before gate closure: its clock does not wait for them."""
DEMO_EPOCH_MINUTES = 15
DEMO_DARK_LEAD = timedelta(hours=1)
"""How long before the sun rises at the community's site the demo's day starts."""


def demo_start(day: date, step_s: int) -> datetime:
    """Where ``wattx demo``'s simulated day begins: ``DEMO_DARK_LEAD`` before the first step
    of ``day`` with the sun up at the community's site, not before midnight (UTC); midnight
    on a day without sunrise. A demo that began at midnight showed an empty market until
    the sun came up: seven simulated hours in December, 42 s at 600 times real time."""
    from wattx.sim.daylight import first_light
    from wattx.sim.site import DEFAULT_SITE

    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    light = first_light(DEFAULT_SITE, day, step_s)
    return midnight if light is None else max(midnight, light - DEMO_DARK_LEAD)


class MechanismChoice(StrEnum):
    CONTINUOUS = "continuous"
    CALL_AUCTION = "call_auction"
    PAY_AS_BID = "pay_as_bid"
    GRID_ONLY = "grid_only"


def register(app: typer.Typer) -> None:
    """Add ``simulate``, ``simulate-feeders`` and ``demo`` to the ``wattx`` app."""
    app.command("simulate")(simulate)
    app.command("simulate-feeders")(simulate_feeders)
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
    shared_assets: bool = True,
    starts_at: datetime | None = None,
) -> Scenario:
    """The scenario of ``days`` days from ``start``, or of its first ``epochs`` epochs;
    from ``starts_at`` (an epoch start) rather than midnight when it is given."""
    from wattx.sim.community import draw_community
    from wattx.sim.scenario import build_scenario
    from wattx.sim.timegrid import TimeGrid

    community = draw_community(_mix(households, shared_assets), seed=seed)
    grid = TimeGrid.for_days(start, days, EpochSchedule(epoch_minutes * 60))
    if starts_at is not None:
        grid = TimeGrid(starts_at, grid.steps, grid.step_s)
    if epochs is not None:
        grid = TimeGrid(grid.start, min(epochs, grid.steps), grid.step_s)
    return build_scenario(community, grid)


def _mix(households: int, shared_assets: bool) -> CommunityMix:
    from wattx.sim.community import CommunityMix

    return CommunityMix(
        households=households, school=shared_assets, community_battery=shared_assets
    )


def describe_community(households: int, shared_assets: bool) -> str:
    """The line that says who is simulated, shared assets included."""
    shared = " plus a school and a community battery" if shared_assets else ""
    return f"community: {households} households{shared}"


def simulate(
    households: Annotated[int, typer.Option(min=1, help="number of households")] = 100,
    shared_assets: Annotated[
        bool,
        typer.Option(
            help="add the community's shared assets to the households: a school "
            "and a community battery"
        ),
    ] = True,
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
    devices: Annotated[
        bool,
        typer.Option(
            help="batteries and EV chargers behind a site node deliver the physical "
            "trades (in-process only; needs --meters)"
        ),
    ] = False,
    device_fault_ppm: Annotated[
        int,
        typer.Option(
            min=0,
            max=333_333,
            help="with --devices, probability of each device fault (no ack, trip, "
            "partial delivery) per device and epoch, ppm",
        ),
    ] = 0,
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
    service_wait_s: Annotated[
        float,
        typer.Option(
            min=0,
            help="with --url, how long to wait for the service to answer ready (GET /readyz) "
            "before giving up",
        ),
    ] = 120.0,
) -> None:
    """Simulate a community trading through the service and write the report.

    By default the service runs in-process on a scratch database with a
    virtual clock, so the days pass as fast as the service answers. With
    --url the run targets a running service over HTTP as its operator: it
    follows the service's own clock and epoch length (the run takes real
    time: --days days, or --epochs epochs), simulates the epochs starting
    now (so --start and --epoch-minutes do not apply, nor --compare), and
    closes each gate at its gate time. A service that is not ready yet (still
    starting) is waited for, with a line that says so, up to --service-wait-s.
    """
    load_settings()  # the environment its service reads: see load_settings
    from rich.progress import Progress, TaskID

    from wattx.cli.errors import fail
    from wattx.sim.errors import SimulationConfigError
    from wattx.sim.runner.compare import write_comparison, write_mechanism_report
    from wattx.sim.runner.devices import DeviceFaultPlan
    from wattx.sim.runner.errors import ServiceRequestError
    from wattx.sim.runner.faults import FaultPlan
    from wattx.sim.runner.meters import ReadingTransport
    from wattx.sim.runner.run import ALL_MECHANISMS, run_in_process
    from wattx.units import format_money

    typer.echo(describe_community(households, shared_assets))
    faults = FaultPlan.each(fault_ppm) if meters else None
    if devices and not meters:
        fail("--devices needs --meters: the meters decide what the devices delivered")
    if devices and url is not None:
        fail("--devices runs only on the in-process service (not with --url)")
    device_faults = (
        DeviceFaultPlan(device_fault_ppm, device_fault_ppm, device_fault_ppm) if devices else None
    )
    reading_transport = ReadingTransport(transport.value)
    runs: dict[str, MechanismRun]
    if url is not None:
        _check_remote_options(url, start, epoch_minutes, compare, mechanism)
        if not operator_email or not operator_password:
            raise typer.BadParameter(
                "--url needs --operator-email and --operator-password "
                "(or WATTX_SIM_OPERATOR_EMAIL and WATTX_SIM_OPERATOR_PASSWORD)"
            )
        try:
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
                shared_assets,
                service_wait_s,
            )
        except (SimulationConfigError, ServiceRequestError) as exc:
            fail(exc.detail)
        chosen = [mechanism.value]
    else:
        scenario = build(
            households,
            days,
            (start or datetime.combine(DEFAULT_START, datetime.min.time())).date(),
            seed,
            epoch_minutes or DEFAULT_EPOCH_MINUTES,
            epochs,
            shared_assets,
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
                        device_faults=device_faults,
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
    shared_assets: bool,
    service_wait_s: float,
) -> dict[str, MechanismRun]:
    """One real-time run on the service at ``url``, and its grid-only baseline."""
    from rich.progress import Progress

    from wattx.sim.community import draw_community
    from wattx.sim.runner.market_round import OrderAnswers
    from wattx.sim.runner.remote import run_remote
    from wattx.sim.runner.run import MechanismRun
    from wattx.sim.simulation import run_grid_only

    community = draw_community(_mix(households, shared_assets), seed=seed)
    with Progress() as progress:
        task = progress.add_task(f"{mechanism} at {url}", total=epochs)

        def advance(done: int) -> None:
            progress.update(task, completed=done, description=f"{mechanism} at {url}")

        def waiting(until: datetime) -> None:
            progress.update(
                task,
                description=f"{mechanism} at {url}: waiting for {until:%H:%M:%S} UTC "
                "(the next quoting or gate time)",
            )

        def announce(message: str) -> None:
            progress.console.print(message)

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
                on_wait=waiting,
                announce=announce,
                service_wait_s=service_wait_s,
            )
        )
    baseline = MechanismRun(run_grid_only(remote.scenario), OrderAnswers(), 0)
    return {"grid_only": baseline, mechanism: remote.run}


def demo(
    households: Annotated[int, typer.Option(min=1, help="number of households")] = 8,
    speed: Annotated[float, typer.Option(help="simulated seconds per wall second")] = 60.0,
    host: Annotated[str, typer.Option(envvar="WATTX_HOST", help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="WATTX_PORT", help="port")] = 8000,
    days: Annotated[int, typer.Option(min=1)] = 1,
    seed: Annotated[int, typer.Option()] = 1,
    strategy: Annotated[StrategyName, typer.Option()] = StrategyName.ZERO_INTELLIGENCE,
) -> None:
    """Serve the API with a small community trading in it, SPEED times faster than real time.

    The simulated day starts today (UTC), an hour before sunrise, on a scratch
    database. The community trades in its own zone, sim-demo (the seeded zone main
    stays empty); a line per simulated hour says what happened. Ctrl-C stops it.
    """
    load_settings()  # the environment its service reads: see load_settings
    from wattx.cli.errors import fail
    from wattx.cli.heap import start_up_collections
    from wattx.cli.serving import bind

    if not speed > 0:
        fail(f"--speed must be above 0 (simulated seconds per wall second), not {speed:g}")
    sock = bind(host, port)
    try:
        # Collecting seldom until the service listens, as ``wattx up`` does.
        with start_up_collections():
            asyncio.run(_demo(households, speed, host, port, days, seed, strategy, sock))
    except KeyboardInterrupt:
        typer.echo("wattx demo stopped", err=True)
        raise typer.Exit(130) from None


async def _demo(
    households: int,
    speed: float,
    host: str,
    port: int,
    days: int,
    seed: int,
    strategy: StrategyName,
    sock: socket.socket,
) -> None:
    import tempfile

    import httpx

    from wattx.api.app import create_app
    from wattx.cli.serving import quiet, server_for, start
    from wattx.services.trading.zones import ZoneService
    from wattx.sim.runner.client import ServiceClient
    from wattx.sim.runner.clock import AcceleratedClock
    from wattx.sim.runner.devices import DeviceFaultPlan, DeviceFleet, websocket_dialer
    from wattx.sim.runner.faults import FaultPlan
    from wattx.sim.runner.provision import MEMBER_PASSWORD, EnergySource, member_email
    from wattx.sim.runner.run import check_schedule, run_against
    from wattx.sim.runner.scratch import OPERATOR_EMAIL, OPERATOR_PASSWORD, scratch_settings
    from wattx.store import Database, upgrade_to_head

    # Tokens are checked against the service's own (accelerated) clock, so the
    # simulated day can be today.
    first_day = datetime.now(UTC).date()
    starts_at = demo_start(first_day, DEMO_EPOCH_MINUTES * 60)
    scenario = build(households, days, first_day, seed, DEMO_EPOCH_MINUTES, starts_at=starts_at)
    schedule = scenario.grid.schedule()
    check_schedule(schedule, DEMO_QUOTE_LEAD_S)
    first_gate = schedule.epoch(scenario.grid.first_epoch_id).gate_closure
    # The clock starts early enough for the set-up to finish before the first quotes.
    clock = AcceleratedClock(first_gate - timedelta(seconds=2 * DEMO_QUOTE_LEAD_S), speed)
    zone = f"sim-{DEMO_RUN_TAG}"
    with tempfile.TemporaryDirectory(prefix="wattx-demo-") as tmp:
        settings = scratch_settings(Path(tmp), schedule).model_copy(
            update={
                "host": host,
                "port": port,
                # The chain worker plans each epoch's deliveries between its gate and its
                # start (five simulated minutes), and settles them once the readings are
                # in: it ticks every simulated minute.
                "settlement_tick_s": max(0.1, min(5.0, 60 / speed)),
                "delivery_grace_s": 60,
            }
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
        # Ctrl-C cancels this coroutine (asyncio's handling), which then stops the server.
        server = server_for(app, settings, handle_signals=False)
        url = f"http://{host}:{port}"
        serving = await start(
            server,
            sock,
            lambda: typer.echo(f"wattx demo at {url} (API docs: {url}/docs), {speed:g}x real time"),
        )
        trading: asyncio.Task[MechanismRun] | None = None
        devices: DeviceFleet | None = None
        try:
            state: AppState = app.state.wattx
            await state.accounts.create_operator(
                email=OPERATOR_EMAIL, password=OPERATOR_PASSWORD, display_name="Operator"
            )
            async with httpx.AsyncClient(base_url=url, timeout=30.0) as http:
                client = ServiceClient(http)
                operator = await client.login(OPERATOR_EMAIL, OPERATOR_PASSWORD)
                typer.echo(f"operator login: {OPERATOR_EMAIL} / {OPERATOR_PASSWORD}")

                def enrolled() -> None:
                    # Only now: the zone exists and the households can sign in.
                    for spec in scenario.community.members[:3]:
                        login = member_email(spec.id, DEMO_RUN_TAG)
                        typer.echo(f"{spec.kind} login: {login} / {MEMBER_PASSWORD}")
                    typer.echo(
                        f"the community trades in zone '{zone}' from {starts_at:%Y-%m-%d %H:%M} "
                        "(UTC, an hour before sunrise at its site); watch "
                        f"it at {url}/api/v1/markets/{zone}/book and "
                        f"{url}/api/v1/trades?zone={zone} (zone 'main' stays empty)"
                    )
                    typer.echo(
                        f"dashboard: {url}/ (the community's market: {url}/market/{zone}; "
                        f"sign in at {url}/login with a login above to see a household or "
                        "the operator's console)"
                    )

                summary = _DemoSummary(schedule, scenario.grid.first_epoch_id, zone)
                summaries: set[asyncio.Task[None]] = set()

                async def report(done: int) -> None:
                    typer.echo(await summary.line(done, state))

                def progress(done: int) -> None:
                    if summary.due(done):
                        task = asyncio.get_running_loop().create_task(report(done))
                        summaries.add(task)
                        task.add_done_callback(summaries.discard)

                # The households' batteries and EV chargers deliver what they trade; one
                # device-epoch in ten goes wrong, so the demo shows under-delivery too.
                devices = DeviceFleet(
                    websocket_dialer(url),
                    DeviceFaultPlan(no_ack_ppm=30_000, trip_ppm=30_000, partial_ppm=40_000),
                )
                trading = asyncio.create_task(
                    run_against(
                        client,
                        operator,
                        scenario,
                        "continuous",
                        strategy,
                        clock,
                        schedule,
                        progress=progress,
                        run_tag=DEMO_RUN_TAG,
                        faults=FaultPlan(),
                        quote_lead_s=DEMO_QUOTE_LEAD_S,
                        # The demo's chain worker mints on its own clock: grants cover sellers.
                        energy=EnergySource.GRANTS,
                        enrolled=enrolled,
                        devices=devices,
                    )
                )
                run = await trading
                traded = sum(r.local_sold_wh for r in run.results.records)
                answers = dict(run.answers.orders)
                typer.echo(f"demo finished: {traded} Wh traded locally, orders {answers}")
                typer.echo("serving until Ctrl-C")
                await serving
        except asyncio.CancelledError:
            quiet()
            raise
        finally:
            if trading is not None:
                trading.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await trading
            if devices is not None:
                await devices.stop()
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await serving


class _DemoSummary:
    """One line per simulated hour: trades, volume and prices of the hour, and settlement."""

    def __init__(self, schedule: EpochSchedule, first_epoch_id: int, zone: str) -> None:
        self._schedule = schedule
        self._first = first_epoch_id
        self._zone = zone
        self._per_hour = max(1, 3_600 // schedule.length_s)

    def due(self, done: int) -> bool:
        return done % self._per_hour == 0

    async def line(self, done: int, state: AppState) -> str:
        from sqlalchemy import func, select

        from wattx.store.models import TradeRow
        from wattx.store.models_devices import TradeDeliveryRow
        from wattx.store.models_settlement import SettlementOutboxRow
        from wattx.units import format_money

        last = self._first + done - 1
        first = last - self._per_hour + 1
        async with state.db.read() as session:
            count, volume, low, high = (
                await session.execute(
                    select(
                        func.count(),
                        func.coalesce(func.sum(TradeRow.qty_wh), 0),
                        func.min(TradeRow.price),
                        func.max(TradeRow.price),
                    ).where(
                        TradeRow.zone == self._zone,
                        TradeRow.epoch_id >= first,
                        TradeRow.epoch_id <= last,
                    )
                )
            ).one()
            statuses = dict(
                (
                    await session.execute(
                        select(SettlementOutboxRow.status, func.count()).group_by(
                            SettlementOutboxRow.status
                        )
                    )
                ).all()
            )
            full, short, pending = (
                await session.execute(
                    select(
                        func.count().filter(
                            TradeDeliveryRow.delivered_wh == TradeDeliveryRow.contracted_wh
                        ),
                        func.count().filter(
                            TradeDeliveryRow.delivered_wh < TradeDeliveryRow.contracted_wh
                        ),
                        func.count().filter(TradeDeliveryRow.delivered_wh.is_(None)),
                    ).where(TradeDeliveryRow.epoch_id >= self._first)
                )
            ).one()
        hour = self._schedule.epoch(first).start.strftime("%Y-%m-%d %H:%M")
        prices = f"{format_money(low)}-{format_money(high)} per kWh" if count else "no prices"
        settled = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
        return (
            f"{hour} UTC +1 h: {count} trades, {volume} Wh, {prices}; "
            f"epoch settlements: {settled or 'none yet'}; physical deliveries so far: "
            f"{full} delivered, {short} under-delivered, {pending} not yet measured"
        )


def simulate_feeders(
    households: Annotated[int, typer.Option(min=1, help="number of households")] = 20,
    days: Annotated[int, typer.Option(min=1, help="simulated days")] = 1,
    start: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="first day [default: 2026-06-01]"),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of every random draw")] = 1,
    capacity_wh: Annotated[
        int, typer.Option(help="each feeder link's export and import capacity, Wh per epoch")
    ] = 1_000,
    epoch_minutes: Annotated[
        int, typer.Option(min=1, help="delivery epoch length in minutes")
    ] = DEFAULT_EPOCH_MINUTES,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="run only the first EPOCHS epochs of the days")
    ] = None,
    strategy: Annotated[StrategyName, typer.Option()] = StrategyName.ZERO_INTELLIGENCE,
    model: Annotated[
        bool, typer.Option(help="also run the model alone, with and without the limits")
    ] = True,
    out: Annotated[Path, typer.Option(help="report directory")] = Path("report-feeders"),
) -> None:
    """Simulate the community on a transformer with two feeders, through the service.

    A scratch service runs in-process on a virtual clock with its embedded
    chain. The operator creates the transformer zone and the two feeder zones
    with the links' capacities, the members enrol in their feeders and meter
    there, every epoch's gate closure clears the three zones by the coupled
    call auction, and each epoch settles on chain. Writes OUT/with_limits
    (flows against limits, binding epochs, zonal prices and the congestion
    rent settled on chain, all read back from the service); with --model also
    OUT/model/with_limits and OUT/model/without_limits, the community model
    alone on the same weather and loads, with and without the limits.
    """
    load_settings()  # the environment its service reads: see load_settings
    from rich.progress import Progress

    from wattx.cli.errors import fail
    from wattx.sim.errors import SimulationConfigError
    from wattx.sim.feeders import TwoFeeders, run_feeder_market, write_feeder_report
    from wattx.sim.report import write_report
    from wattx.sim.runner.errors import ServiceRequestError
    from wattx.sim.runner.grid import run_feeders_in_process, write_service_feeder_report
    from wattx.sim.simulation import run_grid_only
    from wattx.units import format_money

    try:
        feeders = TwoFeeders(export_wh=capacity_wh, import_wh=capacity_wh)
        first = start.date() if start is not None else DEFAULT_START
        scenario = build(households, days, first, seed, epoch_minutes, epochs)
    except SimulationConfigError as error:
        fail(f"{error} (got --capacity-wh {capacity_wh}, --epoch-minutes {epoch_minutes})")
    typer.echo(describe_community(households, True) + "; two feeders under a transformer")
    steps = scenario.grid.steps
    baseline = run_grid_only(scenario)
    with Progress(transient=True) as bar:
        task = bar.add_task("service, coupled call auction", total=steps)

        def advance(done: int) -> None:
            bar.update(task, completed=done)

        try:
            service_run = asyncio.run(
                run_feeders_in_process(scenario, feeders, strategy, progress=advance)
            )
        except (SimulationConfigError, ServiceRequestError) as exc:
            fail(exc.detail)
        if model:
            bar.update(task, description="model, with and without limits")
            limited = run_feeder_market(scenario, feeders, limited=True, strategy=strategy)
            free = run_feeder_market(scenario, feeders, limited=False, strategy=strategy)
    write_service_feeder_report(service_run, baseline, out / "with_limits")
    if model:
        write_report(free.results, baseline, out / "model" / "without_limits")
        write_feeder_report(limited, baseline, out / "model" / "with_limits", free)
    settled = service_run.as_json()
    traded = sum(m.traded_wh for m in service_run.run.results.market)
    typer.echo(
        f"service: {traded} Wh traded; epochs with a binding link: "
        f"{len(settled['split_price_epochs'])} of {steps}"
    )
    typer.echo(
        f"congestion rent settled on chain: {format_money(service_run.rent_settled)} credit "
        f"in {len(settled['settled_epochs'])} settlements; fee (grid) account grew by "
        f"{format_money(service_run.fee_account_growth)} credit"
    )
    if model:
        typer.echo(
            f"model alone: rent {format_money(limited.congestion()['rent'])} credit with limits, "
            f"{format_money(free.congestion()['rent'])} without"
        )
    typer.echo(f"report: {out / 'with_limits' / 'index.html'}")
