"""A wattx service started in-process on a scratch SQLite database, reached over HTTP (ASGI).

The runner injects its clock and starts no epoch clock of its own: the
simulated operator closes each gate through the API when the clock reaches
it. The operator account is created the way a deployment bootstraps its first
operator (``wattx admin create-operator``); everything after that goes
through the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import secrets
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from wattx.api.app import create_app
from wattx.api.state import AppState
from wattx.config import Settings
from wattx.domain import EpochSchedule
from wattx.domain.epochs import EpochClock
from wattx.ingest.node_link import LinkClosedError
from wattx.services.identity.accounts import SCRATCH_PASSWORD_HASHER
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.deploy import DEFAULT_PARAMETERS, DeploySettings
from wattx.settlement.keys import new_signer
from wattx.settlement.port import Signer
from wattx.sim.errors import SimulationConfigError
from wattx.sim.runner.client import ServiceClient, Session
from wattx.sim.runner.devices import LinkConnection, LinkDialer
from wattx.store import Database, upgrade_to_head

OPERATOR_EMAIL = "operator@community.wattx.test"
OPERATOR_PASSWORD = "community-operator-password"
SIMULATED_YEAR_S = 366 * 86_400
SESSION_CACHE_S = 3600.0
"""Wall seconds a live session is trusted: each household orders once an epoch, a
second or two apart, longer than the service's default of 2 s."""


@dataclass(frozen=True, slots=True)
class ServiceConnection:
    client: ServiceClient
    operator: Session
    fee_account_credit: Callable[[], Awaitable[int]]
    """Read from the chain: the free credit the Marketplace holds for its fee (grid) account,
    where settlement pays fees, wheeling and congestion rent."""
    state: AppState | None = field(default=None, compare=False)
    """The service's own objects (the in-process service only): its workers' steps."""


_CLOSED = object()


class _PipeEnd:
    """One end of an in-process link: what one side sends, the other receives."""

    def __init__(self, inbox: asyncio.Queue[object], outbox: asyncio.Queue[object]) -> None:
        self._inbox = inbox
        self._outbox = outbox

    async def _next(self) -> str:
        item = await self._inbox.get()
        if item is _CLOSED:
            self._inbox.put_nowait(_CLOSED)
            raise LinkClosedError
        assert isinstance(item, str)
        return item

    def _put(self, text: str) -> None:
        self._outbox.put_nowait(text)

    def _close(self) -> None:
        self._outbox.put_nowait(_CLOSED)
        self._inbox.put_nowait(_CLOSED)


class _ServiceEnd(_PipeEnd):
    """The service's side, a :class:`wattx.ingest.node_link.LinkSocket`."""

    async def send_text(self, text: str) -> None:
        self._put(text)

    async def receive_text(self) -> str:
        return await self._next()

    async def close(self, code: int, reason: str) -> None:
        self._close()


class _NodeEnd(_PipeEnd):
    """The node's side, a :class:`wattx.sim.runner.devices.LinkConnection`."""

    async def send(self, text: str) -> None:
        self._put(text)

    async def recv(self) -> str:
        try:
            return await self._next()
        except LinkClosedError as exc:
            raise ConnectionError("link closed") from exc


def in_process_dialer(state: AppState) -> LinkDialer:
    """Links served by the service's own link hub, as the WebSocket route serves them."""

    @asynccontextmanager
    async def dial() -> AsyncIterator[LinkConnection]:
        up: asyncio.Queue[object] = asyncio.Queue()
        down: asyncio.Queue[object] = asyncio.Queue()
        service_end = _ServiceEnd(up, down)
        node_end = _NodeEnd(down, up)
        serving = asyncio.create_task(state.node_links.serve(service_end, source="in-process"))
        try:
            yield node_end
        finally:
            node_end._close()
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await serving

    return dial


@dataclass(frozen=True, slots=True)
class InProcessDeliveryWorker:
    """The chain worker's delivery steps and the incentive worker's period reports, run
    when the simulation asks (no worker runs)."""

    state: AppState

    async def plan(self) -> int:
        plans: dict[str, Any] = await self.state.delivery.plan_due()
        return sum(len(p.supply) + len(p.take) for p in plans.values())

    async def sweep(self) -> None:
        await self.state.delivery.sweep()

    async def answers_recorded(self) -> int:
        return await self.state.delivery.device_answers_recorded()

    async def report_periods(self) -> list[int]:
        """The incentive worker's round: report each ended period, settle closed slashes.

        The heartbeats the links took are written first, as the service's one-second
        flush has done long before its worker's round on a real clock."""
        await self.state.nodes.flush_heartbeats()
        return await self.state.incentives.report_due()


INCENTIVE_PERIOD_S = 3600
"""Node-incentive periods of the in-process service: 24 per simulated day, so a run's
site node is reported (and rewarded) several times a day."""

DELIVERY_GRACE_S = 5
"""Late readings the in-process service waits for before settling physical trades: the
runner's meters report 5 s after each epoch (``run.READ_DELAY_S``) and it settles then."""


def scratch_settings(data_dir: Path, schedule: EpochSchedule) -> Settings:
    """A private service: its own database and key, no rate limits that a community would hit.

    Tokens last a simulated year, as the virtual clock makes minutes pass in
    milliseconds; the client still refreshes them if they expire. A live
    session is trusted for an hour without a database read: there is no other
    replica whose logout could be missed, and this process's own revocations
    and suspensions drop it from the cache at once.
    """
    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite+aiosqlite:///{data_dir / 'wattx.sqlite3'}",
        jwt_secret=secrets.token_urlsafe(48),
        epoch_length_s=schedule.length_s,
        gate_closure_lead_s=schedule.gate_closure_lead_s,
        access_token_ttl_s=SIMULATED_YEAR_S,
        refresh_token_ttl_s=SIMULATED_YEAR_S,
        session_cache_s=SESSION_CACHE_S,
        rate_limit_auth_per_window=10**9,
        rate_limit_default_per_window=10**9,
        log_level="WARNING",
        delivery_grace_s=DELIVERY_GRACE_S,
        # Commands planned by the runner reach the in-process node at once.
        node_command_poll_s=0.1,
        # A simulated site's node heartbeats every few wall seconds while the virtual
        # clock jumps from epoch to epoch: judged by a day, it stays online.
        node_heartbeat_interval_s=86_400,
        incentive_period_s=INCENTIVE_PERIOD_S,
    )


@asynccontextmanager
async def scratch_service(
    schedule: EpochSchedule, clock: EpochClock, *, governed: Mapping[str, int] | None = None
) -> AsyncIterator[ServiceConnection]:
    """Run a fresh service for the duration of the block; its database is deleted afterwards.

    Its chain is the embedded EVM without the journal a service keeps on disk
    (``chain-journal.jsonl``, an append and an ``fsync`` per transaction): the
    chain lives exactly as long as the run, like the temporary database, so
    nothing would ever replay the journal.
    ``governed`` gives governed parameters the values the chain is deployed with, as if
    the community had voted them before the run (``SimulationConfigError`` for a name
    the contracts do not govern)."""
    with tempfile.TemporaryDirectory(prefix="wattx-sim-") as tmp:
        settings = scratch_settings(Path(tmp), schedule)
        db = Database(settings.effective_database_url)
        try:
            await upgrade_to_head(db)
        finally:
            await db.dispose()
        chain = _scratch_chain(settings, governed or {})
        app = create_app(
            settings,
            clock=clock,
            run_epoch_clock=False,
            chain=chain,
            password_hasher=SCRATCH_PASSWORD_HASHER,
        )
        async with app.router.lifespan_context(app):
            with _started_heap_frozen():
                state: AppState = app.state.wattx
                await state.accounts.create_operator(
                    email=OPERATOR_EMAIL, password=OPERATOR_PASSWORD, display_name="Operator"
                )
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(
                    transport=transport, base_url="http://wattx.sim"
                ) as http:
                    client = ServiceClient(http)
                    operator = await client.login(OPERATOR_EMAIL, OPERATOR_PASSWORD)
                    chain = state.chain_accounts.chain

                    async def fee_account_credit() -> int:
                        held = await state.chain_accounts.read(
                            chain.balances, chain.deployment.fee_account
                        )
                        return held.free_credit

                    yield ServiceConnection(client, operator, fee_account_credit, state)


@contextlib.contextmanager
def _started_heap_frozen() -> Iterator[None]:
    """Leave the started service's heap out of full collections, and collect less often.

    By the time the service has started, the process holds the web stack, the
    contract compiler, the embedded chain and the scenario: hundreds of
    thousands of objects that live as long as the run. Every full collection
    walked all of them again; frozen (as ``wattx up`` freezes its start-up
    heap), they are never walked, and what the run makes afterwards is
    collected as before. The run allocates fast (every request, every
    transaction), so the youngest generation is collected every 10,000
    allocations instead of 700, and the older ones a little less often. Both
    are undone when the service stops, so a process running several services
    in turn frees each one's.
    """
    gc.collect()
    gc.freeze()
    thresholds = gc.get_threshold()
    gc.set_threshold(10_000, 20, 20)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@functools.cache
def _scratch_operator() -> Signer:
    """One operator for every scratch chain of a process (a key of its own, made once):
    each chain is still its own, in memory, and the same operator lets a later one copy
    the first one's deployment (``wattx.settlement.embedded.deploy_embedded``)."""
    return new_signer()


def _scratch_chain(settings: Settings, governed: Mapping[str, int]) -> ContractChain:
    """An embedded chain deployed with ``governed`` as those parameters' first values, and
    the others' defaults; in memory only."""
    from wattx.settlement.embedded import EmbeddedChain

    unknown = set(governed) - {p.name for p in DEFAULT_PARAMETERS}
    if unknown:
        raise SimulationConfigError(f"not a governed parameter: {', '.join(sorted(unknown))}")
    parameters = [
        dataclasses.replace(p, initial=governed[p.name]) if p.name in governed else p
        for p in DEFAULT_PARAMETERS
    ]
    deploy = DeploySettings(mint_threshold_wh=settings.mint_threshold_wh, parameters=parameters)
    return EmbeddedChain(_scratch_operator(), settings=deploy)
