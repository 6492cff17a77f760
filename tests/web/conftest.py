"""Fixtures for the dashboard: the service tests' databases, clock and app, on the
embedded chain (so trades settle and proofs verify), and an HTTP client that keeps
cookies like a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from service.client import ApiClient
from service.conftest import ManualClock, clock, database_url, in_process_app, pg_url, settings
from support.operator import WORKER_OPERATOR
from wattx.api.state import AppState
from wattx.config import Settings
from wattx.settlement.embedded import EmbeddedChain

__all__ = ["clock", "database_url", "pg_url", "settings"]


@pytest.fixture
async def app(settings: Settings, clock: ManualClock) -> AsyncIterator[FastAPI]:
    application = in_process_app(
        settings, clock=clock, run_epoch_clock=False, chain=EmbeddedChain(WORKER_OPERATOR)
    )
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
