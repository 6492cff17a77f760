"""A wattx service started in-process on a scratch SQLite database, reached over HTTP (ASGI).

The runner injects its clock and starts no epoch clock of its own: the
simulated operator closes each gate through the API when the clock reaches
it. The operator account is created the way a deployment bootstraps its first
operator (``wattx admin create-operator``); everything after that goes
through the API.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from wattx.api.app import create_app
from wattx.api.state import AppState
from wattx.config import Settings
from wattx.domain import EpochSchedule
from wattx.domain.epochs import EpochClock
from wattx.sim.runner.client import ServiceClient, Session
from wattx.store import Database, upgrade_to_head

OPERATOR_EMAIL = "operator@community.wattx.test"
OPERATOR_PASSWORD = "community-operator-password"
SIMULATED_YEAR_S = 366 * 86_400


@dataclass(frozen=True, slots=True)
class ServiceConnection:
    client: ServiceClient
    operator: Session
    fee_account_credit: Callable[[], Awaitable[int]]
    """Read from the chain: the free credit the Marketplace holds for its fee (grid) account,
    where settlement pays fees, wheeling and congestion rent."""


def scratch_settings(data_dir: Path, schedule: EpochSchedule) -> Settings:
    """A private service: its own database and key, no rate limits that a community would hit.

    Tokens last a simulated year, as the virtual clock makes minutes pass in
    milliseconds; the client still refreshes them if they expire.
    """
    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite+aiosqlite:///{data_dir / 'wattx.sqlite3'}",
        jwt_secret=secrets.token_urlsafe(48),
        epoch_length_s=schedule.length_s,
        gate_closure_lead_s=schedule.gate_closure_lead_s,
        access_token_ttl_s=SIMULATED_YEAR_S,
        refresh_token_ttl_s=SIMULATED_YEAR_S,
        rate_limit_auth_per_window=10**9,
        rate_limit_default_per_window=10**9,
        log_level="WARNING",
    )


@asynccontextmanager
async def scratch_service(
    schedule: EpochSchedule, clock: EpochClock
) -> AsyncIterator[ServiceConnection]:
    """Run a fresh service for the duration of the block; its database is deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="wattx-sim-") as tmp:
        settings = scratch_settings(Path(tmp), schedule)
        db = Database(settings.effective_database_url)
        try:
            await upgrade_to_head(db)
        finally:
            await db.dispose()
        app = create_app(settings, clock=clock, run_epoch_clock=False)
        async with app.router.lifespan_context(app):
            state: AppState = app.state.wattx
            await state.accounts.create_operator(
                email=OPERATOR_EMAIL, password=OPERATOR_PASSWORD, display_name="Operator"
            )
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://wattx.sim") as http:
                client = ServiceClient(http)
                operator = await client.login(OPERATOR_EMAIL, OPERATOR_PASSWORD)
                chain = state.chain_accounts.chain

                async def fee_account_credit() -> int:
                    held = await state.chain_accounts.read(
                        chain.balances, chain.deployment.fee_account
                    )
                    return held.free_credit

                yield ServiceConnection(client, operator, fee_account_credit)
