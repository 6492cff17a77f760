"""The app factory: ``create_app(settings)`` builds the whole service around one database."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from prometheus_client import CollectorRegistry, Counter
from starlette.routing import Route, WebSocketRoute

from wattx.api.auth import authorize
from wattx.api.direct_route import DirectBodyRoute, strict_content_type
from wattx.api.docs import install_docs
from wattx.api.input import StrictJsonRoute
from wattx.api.logging import configure_logging
from wattx.api.middleware import EdgeMiddleware
from wattx.api.permissions import check_complete
from wattx.api.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers
from wattx.api.ratelimit import (
    FailureStore,
    LoginBackoff,
    MemoryFailureStore,
    MemoryRateLimiter,
    RateLimiter,
    RedisFailureStore,
    RedisRateLimiter,
)
from wattx.api.routers import (
    audit,
    auth,
    devices,
    events,
    governance,
    health,
    incentives,
    ledger,
    markets,
    meters,
    nodes,
    orders,
    proofs,
    statements,
    tokens,
    users,
    wallet,
    zones,
)
from wattx.api.routers import readings as readings_router
from wattx.api.schemas.common import Problem
from wattx.api.schemas.market import ORDER_BATCH_MAX_BYTES
from wattx.api.sse import EventHub
from wattx.api.state import AppState
from wattx.bus.memory import InProcessBus
from wattx.bus.port import EventBus
from wattx.bus.redis import RedisBus
from wattx.config import Settings
from wattx.domain import EpochSchedule
from wattx.domain.epochs import EpochClock, SystemClock
from wattx.governance import MINT_THRESHOLD
from wattx.ingest.mqtt import MqttReadingIngest
from wattx.ingest.node_link import LinkTimings, NodeLinkHub
from wattx.metering.minting import MintPolicy
from wattx.metering.policy import ValidationPolicy
from wattx.services.audit import AuditService
from wattx.services.community.governance import GovernanceService
from wattx.services.community.incentives import IncentiveReportTask, IncentivesService
from wattx.services.community.nodes import HeartbeatFlushTask, NodeHealthTask, NodeService
from wattx.services.funds.statements import StatementService
from wattx.services.funds.wallet import WalletService
from wattx.services.identity.accounts import AccountService
from wattx.services.identity.tokens import AccessTokenCodec
from wattx.services.measurement.delivery import DeliveryService
from wattx.services.measurement.delivery_metrics import DeliveryMetrics
from wattx.services.measurement.metering import MeteringService
from wattx.services.measurement.meters import MeterRegistryService
from wattx.services.onchain.chain import ChainAccounts, keyring_from_settings, open_chain
from wattx.services.onchain.ledger_public import PublicLedgerService
from wattx.services.onchain.minting import MintingService
from wattx.services.onchain.retirement import RetirementService
from wattx.services.onchain.settlement import ChainWorkerTask, SettlementService
from wattx.services.periodic import WriterOnlyTask
from wattx.services.trading.energy_flow import EnergyFlowService
from wattx.services.trading.epoch_clock import EpochClockTask
from wattx.services.trading.market import MarketService
from wattx.services.trading.market_metrics import MarketMetrics
from wattx.services.trading.writer_election import MarketWriterElection
from wattx.services.trading.zones import ZoneService
from wattx.services.wal_checkpoint import WalCheckpointTask
from wattx.settlement.contract_chain import ContractChain
from wattx.store.db import Database
from wattx.web import WEB_ROUTERS, install_web

API_VERSION = "1.0.0"
DEFAULT_FEE_BPS = 25
"""The market fee before the chain's governed ``market_fee_bps`` is read at start-up."""

if TYPE_CHECKING:
    from argon2 import PasswordHasher


# Routes are matched in order: the busiest (orders, readings, markets) go first.
API_ROUTERS: tuple[APIRouter, ...] = (
    orders.router,
    readings_router.router,
    markets.router,
    health.router,
    auth.router,
    users.router,
    wallet.router,
    zones.router,
    meters.router,
    events.router,
    tokens.router,
    proofs.router,
    ledger.router,
    nodes.router,
    audit.router,
    devices.router,
    governance.router,
    incentives.router,
    statements.router,
)
"""The API's routers, in the order ``create_app`` includes them."""

_PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": Problem, "description": "Problem details (RFC 9457)"}
}


@functools.cache
def _api_router() -> APIRouter:
    """The API's routers under one router, made once per process and shared by every app.

    FastAPI builds an included router's routes (their dependencies and models) when a
    request first reaches it, once per inclusion: included in each app, they were
    built again for each app a process made (the tests make hundreds, the simulator
    one per run), about 0.2 s of CPU an app for all of them. Shared, they are built
    once. Every route depends on ``authorize`` and documents problem responses, as
    before. The one thing given up is ``app.dependency_overrides``, which nothing
    here uses: shared routes look for overrides on no app.
    """
    router = APIRouter(dependencies=[Depends(authorize)], responses=_PROBLEM_RESPONSES)
    for included in API_ROUTERS:
        router.include_router(included)
    return router


def create_app(
    settings: Settings,
    *,
    clock: EpochClock | None = None,
    bus: EventBus | None = None,
    run_epoch_clock: bool = True,
    chain: ContractChain | None = None,
    password_hasher: PasswordHasher | None = None,
) -> FastAPI:
    """Build the app. The database must be migrated (``wattx db upgrade``) before start-up.

    ``clock`` replaces the system clock (tests and simulations); with
    ``run_epoch_clock`` false, gates close only when an operator forces them
    (and epochs are minted for and settled only on operator request). ``chain``
    replaces the chain from the settings (tests share one across restarts).
    ``password_hasher`` replaces the service's Argon2 parameters (the simulator's
    scratch service only; no setting reaches it).
    """
    configure_logging(settings.log_level)
    registry = CollectorRegistry()
    the_clock = clock or SystemClock()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await _start_services(settings, the_clock, bus, registry, chain, password_hasher)
        app.state.wattx = state
        checkpoints = WalCheckpointTask(state.db, tick_s=2.0)
        if state.db.is_sqlite:
            checkpoints.start()
        if state.market_writer is not None:
            state.market_writer.start()
        clock_task = EpochClockTask(state.market, tick_s=settings.clock_tick_s)
        if run_epoch_clock:
            clock_task.start()

        async def apply_governance() -> int:
            """Executed proposals change the market: only its writer applies them."""
            if not state.market.is_writer:
                return 0
            return await state.governance.apply_executed()

        def runs_singletons() -> bool:
            """With several replicas, the chain worker and the incentive reports run on
            the elected market writer alone (docs/operations.md, "Scaling out")."""
            return state.market_writer is None or state.market_writer.is_writer

        singleton_rounds = Counter(
            "wattx_writer_job_rounds_total",
            "Rounds of the jobs only the market writer runs, by job and whether they ran here",
            ["job", "ran"],
            registry=registry,
        )
        chain_worker = WriterOnlyTask(
            ChainWorkerTask(
                state.settlement,
                state.minting,
                state.retirement,
                tick_s=settings.settlement_tick_s,
                delivery=state.delivery,
                governance=apply_governance,
            ),
            job="chain-worker",
            runs_here=runs_singletons,
            rounds=singleton_rounds,
        )
        incentive_reports = WriterOnlyTask(
            IncentiveReportTask(state.incentives, tick_s=settings.incentive_tick_s),
            job="incentives",
            runs_here=runs_singletons,
            rounds=singleton_rounds,
        )
        if run_epoch_clock:
            chain_worker.start()
            incentive_reports.start()
        mqtt_ingest = (
            MqttReadingIngest(state.metering, settings.mqtt_url, prefix=settings.mqtt_topic_prefix)
            if settings.mqtt_url
            else None
        )
        app.state.mqtt_ingest = mqtt_ingest
        if mqtt_ingest is not None:
            mqtt_ingest.start()
        state.node_links.start()
        node_health = NodeHealthTask(state.nodes, registry, tick_s=settings.node_health_tick_s)
        node_health.start()
        heartbeats = HeartbeatFlushTask(state.nodes, tick_s=settings.node_heartbeat_flush_s)
        heartbeats.start()
        try:
            yield
        finally:
            await node_health.stop()
            await state.node_links.stop()
            # After the links: the heartbeats they took last are written too.
            await heartbeats.stop()
            if mqtt_ingest is not None:
                await mqtt_ingest.stop()
            await incentive_reports.stop()
            await chain_worker.stop()
            await clock_task.stop()
            if state.market_writer is not None:
                await state.market_writer.stop()
            await checkpoints.stop()
            await state.events.stop()
            await state.rate_limiter.close()
            await state.login_backoff.close()
            await state.bus.close()
            await state.db.dispose()

    app = FastAPI(
        title="wattx",
        version=API_VERSION,
        description="Peer-to-peer electricity market for community microgrids. "
        "Energy in Wh, money in micro-units, prices in micro-units per kWh; "
        "errors are RFC 9457 problem details with a stable `code`.",
        lifespan=lifespan,
        # /docs is installed below with Swagger UI from the installed package (no CDN).
        docs_url=None,
        redoc_url=None,
        # Metrics are Prometheus (/metrics); FastAPI's own OpenTelemetry hooks
        # would only cost a provider lookup per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        dependencies=[Depends(authorize)],
        responses=_PROBLEM_RESPONSES,
    )
    # The same route objects in every app: see _api_router.
    app.router.routes.extend(_api_router().routes)
    install_docs(app)
    # The node link authenticates by its own signed challenge, not by the bearer
    # token dependency every HTTP route carries, so it is a plain Starlette route.
    app.router.routes.append(WebSocketRoute("/api/v1/nodes/link", nodes.node_link))
    install_problem_handlers(app)
    install_web(app, settings)
    app.add_middleware(
        EdgeMiddleware,
        registry=registry,
        hsts_max_age_s=settings.hsts_max_age_s,
        max_body_bytes=settings.max_body_bytes,
        body_limits={orders.BATCH_PATH: max(settings.max_body_bytes, ORDER_BATCH_MAX_BYTES)},
    )
    check_complete(route_rules(app))
    check_strict_json(app)
    check_direct_routes(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def declared_routes(app: FastAPI) -> Iterator[APIRoute | Route]:
    """The app's own routes, then those of the routers ``create_app`` includes.

    Read from the routers themselves rather than from FastAPI's effective routes:
    building those costs about 0.1 s of CPU an app, which FastAPI otherwise spends
    router by router, when a request first reaches one (``tests/service/
    test_permissions.py`` checks that both give the same routes).
    """
    for router in (app.router, *API_ROUTERS, *WEB_ROUTERS):
        for route in router.routes:
            if isinstance(route, APIRoute | Route):
                yield route


def route_rules(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path template) the app serves."""
    return [
        (method, route.path)
        for route in declared_routes(app)
        for method in sorted(route.methods or ())
        if method != "HEAD"
    ]


def check_strict_json(app: FastAPI) -> None:
    """Every API route decodes its body strictly (``wattx.api.input``); raise if one does not."""
    lax = [
        route.path
        for route in declared_routes(app)
        if isinstance(route, APIRoute) and not isinstance(route, StrictJsonRoute)
    ]
    if lax:
        raise RuntimeError(f"routes without StrictJsonRoute: {', '.join(lax)}")


def check_direct_routes(app: FastAPI) -> None:
    """A :class:`DirectBodyRoute` calls ``authorize`` and no other route-wide dependency,
    and decodes only bodies with a JSON content type: raise if one of the routers it is
    reached through carries another dependency or decodes other bodies."""
    routers = [app.router, _api_router()]
    routers += [r for r in API_ROUTERS if any(isinstance(x, DirectBodyRoute) for x in r.routes)]
    others = {d.dependency for r in routers for d in r.dependencies} - {authorize}
    if others:
        names = ", ".join(sorted(getattr(d, "__name__", repr(d)) for d in others))
        raise RuntimeError(f"route-wide dependencies a DirectBodyRoute would skip: {names}")
    if not all(strict_content_type(r) for r in routers):
        raise RuntimeError("a DirectBodyRoute leaves a body without a JSON content type undecoded")


async def _start_services(
    settings: Settings,
    clock: EpochClock,
    bus: EventBus | None,
    registry: CollectorRegistry,
    chain: ContractChain | None,
    password_hasher: PasswordHasher | None = None,
) -> AppState:
    db = Database(settings.effective_database_url)
    the_bus: EventBus = bus or (
        RedisBus(settings.redis_url, prefix=settings.redis_prefix)
        if settings.redis_url
        else InProcessBus()
    )
    limiter: RateLimiter = (
        RedisRateLimiter(settings.redis_url, prefix=settings.redis_prefix)
        if settings.redis_url
        else MemoryRateLimiter()
    )
    failures: FailureStore = (
        RedisFailureStore(settings.redis_url, prefix=settings.redis_prefix)
        if settings.redis_url
        else MemoryFailureStore()
    )
    login_backoff = LoginBackoff(
        failures,
        free_failures=settings.login_free_failures,
        max_wait_s=settings.login_backoff_max_s,
        forget_s=settings.login_failures_forget_s,
    )
    codec = AccessTokenCodec(settings.jwt_key(), settings.access_token_ttl_s)
    accounts = AccountService(
        db,
        codec,
        clock,
        refresh_ttl_s=settings.refresh_token_ttl_s,
        nonce_ttl_s=settings.wallet_nonce_ttl_s,
        session_cache_s=settings.session_cache_s,
        password_hasher=password_hasher,
    )
    zone_service = ZoneService(db, clock)
    schedule = EpochSchedule(settings.epoch_length_s, settings.gate_closure_lead_s)
    market = MarketService(
        db,
        the_bus,
        clock,
        MarketMetrics(registry),
        schedule=schedule,
        # Until governance's first parameter set is loaded (GovernanceService.start).
        fee_bps=DEFAULT_FEE_BPS,
        cross_zone=settings.cross_zone,
    )
    zone_service.on_change(market.reload_zones)
    await market.start()
    election = (
        MarketWriterElection(
            db,
            market,
            clock,
            tick_s=settings.market_writer_tick_s,
            forward_timeout_s=settings.market_forward_timeout_s,
            candidate=settings.market_writer == "elect",
        )
        if settings.market_writer != "always" and not db.is_sqlite
        else None
    )
    if election is not None:
        # One round before serving: a lone replica (or the first) writes from the start.
        await election.run_round()
    metering = MeteringService(
        db, the_bus, clock, schedule=schedule, policy=validation_policy(settings)
    )
    await metering.start()
    the_chain = chain if chain is not None else await asyncio.to_thread(open_chain, settings)
    chain_accounts = ChainAccounts(db, the_chain, keyring_from_settings(settings), clock)
    hub = EventHub(the_bus, ring_size=settings.sse_ring_size)
    await hub.start()
    node_service = NodeService(
        db,
        the_bus,
        clock,
        metering,
        heartbeat_interval_s=settings.node_heartbeat_interval_s,
        command_retry_base_s=settings.node_command_retry_s,
        incentive_period_s=settings.incentive_period_s,
    )
    links = NodeLinkHub(
        node_service,
        the_bus,
        LinkTimings(
            auth_timeout_s=settings.node_auth_timeout_s,
            recheck_s=settings.node_link_recheck_s,
            command_poll_s=settings.node_command_poll_s,
            max_frame_bytes=settings.node_max_frame_bytes,
        ),
    )
    delivery = DeliveryService(
        db,
        the_bus,
        clock,
        schedule,
        grace_s=settings.delivery_grace_s,
        start_grace_s=settings.delivery_start_grace_s,
        telemetry_tolerance_wh=settings.telemetry_tolerance_wh,
        telemetry_tolerance_pct=settings.telemetry_tolerance_pct,
        metrics=DeliveryMetrics(registry),
    )
    settlement = SettlementService(
        db,
        chain_accounts,
        the_bus,
        clock,
        schedule,
        retry_s=settings.settlement_retry_s,
        max_refusals=settings.settlement_max_refusals,
        failures=Counter(
            "wattx_settlements_failed_total",
            "Epoch settlements that failed for good (see GET /api/v1/alerts)",
            registry=registry,
        ),
        delivery=delivery,
        log_window_blocks=settings.chain_log_window_blocks,
    )
    governance = GovernanceService(
        db,
        chain_accounts,
        the_bus,
        clock,
        market,
        settlement.index_events,
        log_window_blocks=settings.chain_log_window_blocks,
    )
    await governance.start()
    zone_service.governed_by(governance.is_governed)
    meter_registry = MeterRegistryService(db, clock)
    return AppState(
        settings=settings,
        clock=clock,
        db=db,
        bus=the_bus,
        registry=registry,
        rate_limiter=limiter,
        login_backoff=login_backoff,
        accounts=accounts,
        zones=zone_service,
        meters=meter_registry,
        metering=metering,
        wallet=WalletService(db, chain_accounts),
        market=market,
        chain_accounts=chain_accounts,
        settlement=settlement,
        minting=MintingService(
            db,
            chain_accounts,
            the_bus,
            clock,
            schedule,
            MintPolicy(threshold_wh=settings.mint_threshold_wh),
            threshold_for=lambda epoch_id: market.parameters_for(epoch_id).get(MINT_THRESHOLD),
        ),
        retirement=RetirementService(db, chain_accounts, clock),
        public_ledger=PublicLedgerService(db),
        events=hub,
        nodes=node_service,
        node_links=links,
        audit=AuditService(db, clock),
        delivery=delivery,
        governance=governance,
        incentives=IncentivesService(
            db,
            chain_accounts,
            period_s=settings.incentive_period_s,
            failed_command_threshold=settings.incentive_failed_commands_threshold,
        ),
        statements=StatementService(db, schedule, clock),
        energy_flow=EnergyFlowService(
            meters=meter_registry, metering=metering, market=market, delivery=delivery
        ),
        market_writer=election,
    )


def validation_policy(settings: Settings) -> ValidationPolicy:
    """The operator's reading rules (``reading_*``, ``alert_*`` settings)."""
    return ValidationPolicy(
        max_batch_size=settings.reading_batch_limit,
        max_future_skew_s=settings.reading_future_skew_s,
        retention_s=settings.reading_retention_s,
        capacity_margin_pct=settings.reading_capacity_margin_pct,
        voltage_band_mv=(settings.alert_voltage_min_mv, settings.alert_voltage_max_mv),
        frequency_band_millihz=(
            settings.alert_frequency_min_millihz,
            settings.alert_frequency_max_millihz,
        ),
    )


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    # Error responses are problem documents: publish them under their media type.
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            problem = operation.get("responses", {}).get("4XX")
            if problem and "application/json" in problem.get("content", {}):
                problem["content"] = {PROBLEM_MEDIA_TYPE: problem["content"]["application/json"]}
    schema.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    schema["security"] = [{"bearer": []}]
    app.openapi_schema = schema
    return schema
