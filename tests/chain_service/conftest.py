"""Fixtures for the chain in the live service: the service tests' databases and clock,
a chain per test (so a "restarted" service finds the same chain), the app on top."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from service.client import ApiClient
from service.conftest import (
    ManualClock,
    clock,
    database_url,
    empty_url,
    in_process_app,
    pg_url,
    settings,
)
from settlement.conftest import anvil_url
from support.operator import WORKER_OPERATOR
from wattx.api.state import AppState
from wattx.config import Settings
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.embedded import EmbeddedChain

__all__ = ["anvil_url", "clock", "database_url", "empty_url", "pg_url", "settings"]


@pytest.fixture
def chain() -> ContractChain:
    return EmbeddedChain(WORKER_OPERATOR)


@pytest.fixture
async def app(
    settings: Settings, clock: ManualClock, chain: ContractChain
) -> AsyncIterator[FastAPI]:
    application = in_process_app(settings, clock=clock, run_epoch_clock=False, chain=chain)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def state(app: FastAPI) -> AppState:
    result: AppState = app.state.wattx
    return result


@pytest.fixture
async def api(app: FastAPI, state: AppState) -> AsyncIterator[ApiClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://wattx.test") as http:
        yield ApiClient(http, state)
