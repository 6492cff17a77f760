"""Fixtures for the edge-node tests: the service fixtures, a clock near the wall clock
(the daemon judges command expiry by its own clock), fast link timings, helpers."""

from __future__ import annotations

import os
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from service.client import ApiClient, User
from service.conftest import (
    TEST_KEYRING_SECRET,
    ManualClock,
    api,
    app,
    database_url,
    in_process_app,
    pg_url,
    state,
)
from service.live import serving
from wattx.api.state import AppState
from wattx.config import Settings
from wattx.nodes import challenge
from wattx.nodes.daemon.config import KEY_NAME, NodeConfig, write_key
from wattx.services.principal import Role

__all__ = ["ManualClock", "api", "app", "database_url", "pg_url", "state"]

MQTT_URL = "mqtt://127.0.0.1:1883"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        jwt_secret="test-secret-key-of-sufficient-length",
        keyring_secret=TEST_KEYRING_SECRET,
        rate_limit_auth_per_window=10_000,
        rate_limit_default_per_window=100_000,
        max_body_bytes=1024 * 1024,
        log_level="WARNING",
        node_heartbeat_interval_s=30,
        node_link_recheck_s=1.0,
        node_command_poll_s=0.2,
        node_command_retry_s=0.5,
        node_auth_timeout_s=3.0,
        node_max_frame_bytes=64 * 1024,
        node_health_tick_s=3600.0,
        node_heartbeat_flush_s=0.05,
    )


@dataclass
class Service:
    app: FastAPI
    url: str
    api: ApiClient

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.wattx
        return state


@asynccontextmanager
async def running(
    settings: Settings, clock: ManualClock, *, port: int | None = None
) -> AsyncIterator[Service]:
    app = in_process_app(settings, clock=clock, run_epoch_clock=False)
    async with (
        serving(app, port=port) as url,
        httpx.AsyncClient(base_url=url, timeout=30, verify=_TLS) as http,
    ):
        yield Service(app, url, ApiClient(http, app.state.wattx))


_TLS = ssl.create_default_context()
"""The TLS settings of every client of a test service (which speaks plain HTTP): made once,
as each client would otherwise load the CA bundle again (35 ms of CPU)."""


@pytest.fixture
def manual_rounds(settings: Settings) -> Settings:
    """Settings where nothing sweeps for due commands and no heartbeat round runs: only
    the links, and the test, act."""
    return settings.model_copy(
        update={"node_heartbeat_flush_s": 3600.0, "node_command_poll_s": 3600.0}
    )


@pytest.fixture
async def service(settings: Settings, clock: ManualClock) -> AsyncIterator[Service]:
    async with running(settings, clock) as svc:
        yield svc


@dataclass
class Enrolled:
    node_id: str
    seed: bytes
    owner: User
    config: NodeConfig


async def registration_token(api: ApiClient, owner: User, *, ttl_s: int = 600) -> str:
    op = await api.operator()
    response = await api.http.post(
        "/api/v1/nodes/registration-tokens",
        json={"owner_id": owner.id, "name": f"site-{uuid.uuid4().hex[:6]}", "ttl_s": ttl_s},
        headers=op.headers,
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def enrol(
    api: ApiClient,
    data_dir: Path,
    *,
    server: str = "http://unused",
    mqtt_prefix: str | None = None,
    heartbeat_s: float = 30.0,
    owner: User | None = None,
) -> Enrolled:
    """A node operator's node, enrolled over the API, with its config and key on disk."""
    owner = owner or await api.signup(Role.NODE_OPERATOR)
    token = await registration_token(api, owner)
    seed = os.urandom(32)
    response = await api.http.post(
        "/api/v1/nodes/enrol",
        json={"registration_token": token, "public_key": challenge.public_key_hex(seed)},
    )
    assert response.status_code == 201, response.text
    node_id = response.json()["node_id"]
    write_key(data_dir / KEY_NAME, seed)
    config = NodeConfig(
        server=server,
        node_id=node_id,
        data_dir=str(data_dir),
        mqtt_url=MQTT_URL if mqtt_prefix else None,
        mqtt_prefix=mqtt_prefix or "wattx",
        heartbeat_interval_s=heartbeat_s,
    )
    config.save()
    return Enrolled(node_id, seed, owner, config)
