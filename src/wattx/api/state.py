"""What the app holds for its lifetime, reachable from any request."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from prometheus_client import CollectorRegistry

from wattx.api.ratelimit import LoginBackoff, RateLimiter
from wattx.api.sse import EventHub
from wattx.bus.port import EventBus
from wattx.config import Settings
from wattx.domain.epochs import EpochClock
from wattx.ingest.node_link import NodeLinkHub
from wattx.services.audit import AuditService
from wattx.services.community.governance import GovernanceService
from wattx.services.community.incentives import IncentivesService
from wattx.services.community.nodes import NodeService
from wattx.services.funds.statements import StatementService
from wattx.services.funds.wallet import WalletService
from wattx.services.identity.accounts import AccountService
from wattx.services.measurement.delivery import DeliveryService
from wattx.services.measurement.metering import MeteringService
from wattx.services.measurement.meters import MeterRegistryService
from wattx.services.onchain.chain import ChainAccounts
from wattx.services.onchain.ledger_public import PublicLedgerService
from wattx.services.onchain.minting import MintingService
from wattx.services.onchain.retirement import RetirementService
from wattx.services.onchain.settlement import SettlementService
from wattx.services.trading.energy_flow import EnergyFlowService
from wattx.services.trading.market import MarketService
from wattx.services.trading.writer_election import MarketWriterElection
from wattx.services.trading.zones import ZoneService
from wattx.store.db import Database


@dataclass
class AppState:
    settings: Settings
    clock: EpochClock
    db: Database
    bus: EventBus
    registry: CollectorRegistry
    rate_limiter: RateLimiter
    login_backoff: LoginBackoff
    accounts: AccountService
    zones: ZoneService
    meters: MeterRegistryService
    metering: MeteringService
    wallet: WalletService
    market: MarketService
    chain_accounts: ChainAccounts
    settlement: SettlementService
    minting: MintingService
    retirement: RetirementService
    public_ledger: PublicLedgerService
    events: EventHub
    nodes: NodeService
    node_links: NodeLinkHub
    audit: AuditService
    delivery: DeliveryService
    governance: GovernanceService
    incentives: IncentivesService
    statements: StatementService
    energy_flow: EnergyFlowService
    market_writer: MarketWriterElection | None = None
    """The market writer election (PostgreSQL replicas with ``market_writer`` elect/never)."""


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.wattx
    return state


async def app_state(request: Request) -> AppState:
    """The dependency form of :func:`state_of`.

    It is ``async`` because FastAPI runs a plain ``def`` dependency in a worker
    thread, a thread hop on every request.
    """
    return state_of(request)
