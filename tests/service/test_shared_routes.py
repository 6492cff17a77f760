"""Every app a process makes serves the API through the same route objects, built once
(``wattx.api.app._api_router``), and each still answers from its own state; an app that
has stopped is freed, whatever the process keeps."""

from __future__ import annotations

import gc
import weakref
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


async def test_a_stopped_app_is_freed(tmp_path: Path) -> None:
    # FastAPI keeps every endpoint it has classified in process-wide caches: an endpoint
    # that closed over its app kept the app (its database, chain and metrics) alive for as
    # long as the process lived; the tests make hundreds of apps in one process.
    async with _service(tmp_path) as (app, api):
        for path in ("/docs", "/docs/oauth2-redirect", "/healthz", "/"):
            answer = await api.http.get(path)
            assert answer.status_code == 200, (path, answer.text)
        app_ref = weakref.ref(app)
        state_ref = weakref.ref(app.state.wattx)
    del app, api
    gc.collect()
    assert app_ref() is None
    assert state_ref() is None
