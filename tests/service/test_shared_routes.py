"""Every app a process makes serves the API through the same route objects, built once
(``wattx.api.app._api_router``), and each still answers from its own state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from wattx.api.app import API_ROUTERS
from wattx.services.principal import Role

from .client import PASSWORD, ApiClient
from .conftest import (
    ManualClock,
    in_process_app,
    migrated_sqlite_url,
    service_settings,
    sqlite_template,
)


@pytest.fixture
def directories(tmp_path: Path) -> tuple[Path, Path]:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    return first, second


@asynccontextmanager
async def _service(directory: Path) -> AsyncIterator[tuple[FastAPI, ApiClient]]:
    settings = service_settings(migrated_sqlite_url(sqlite_template(), directory), directory)
    app = in_process_app(settings, clock=ManualClock(), run_epoch_clock=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://wattx.test") as http:
            yield app, ApiClient(http, app.state.wattx)


def _api_routes(app: FastAPI) -> list[object]:
    """The app's routes that include one of the API's routers."""
    return [
        route
        for route in app.router.routes
        if any(getattr(route, "original_router", None) is router for router in API_ROUTERS)
    ]


async def test_two_apps_share_the_routes_and_keep_their_own_state(
    directories: tuple[Path, Path],
) -> None:
    async with (
        _service(directories[0]) as (first_app, first),
        _service(directories[1]) as (second_app, second),
    ):
        shared = _api_routes(first_app)
        assert len(shared) == len(API_ROUTERS)
        assert all(a is b for a, b in zip(shared, _api_routes(second_app), strict=True))

        user = await first.signup(Role.PROSUMER)
        me = await first.http.get("/api/v1/users/me", headers=user.headers)
        assert me.status_code == 200, me.text
        assert me.json()["email"] == user.email
        # The other app has its own database: the account is not there, and the
        # first app's token is refused by it.
        login = await second.http.post(
            "/api/v1/auth/login", json={"email": user.email, "password": PASSWORD}
        )
        assert login.status_code == 401, login.text
        refused = await second.http.get("/api/v1/users/me", headers=user.headers)
        assert refused.status_code == 401, refused.text
        # Every shared route still requires a caller.
        anonymous = await second.http.get("/api/v1/users/me")
        assert anonymous.status_code == 401, anonymous.text
        assert anonymous.headers["content-type"].startswith("application/problem+json")
