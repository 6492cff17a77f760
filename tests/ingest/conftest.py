"""Fixtures for the ingestion tests: the service fixtures (SQLite and PostgreSQL), a test meter."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from service.client import ApiClient, User
from service.conftest import (
    START,
    ManualClock,
    api,
    app,
    clock,
    database_url,
    pg_url,
    service_settings,
    state,
)
from service.helpers import FLAT_ZONE
from wattx.config import Settings
from wattx.metering import MeterSigner
from wattx.services.principal import Role

__all__ = ["START", "ManualClock", "api", "app", "clock", "database_url", "pg_url", "state"]

RATED_CAPACITY_W = 5_000
INTERVAL = timedelta(minutes=5)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return service_settings(
        database_url,
        tmp_path,
        # Room for a batch above the validation limit, so that rule is reached.
        max_body_bytes=1024 * 1024,
    )


@dataclass
class SignedMeter:
    id: str
    owner: User
    signer: MeterSigner
    zone: str


async def register_meter(api: ApiClient, *, activate: bool = True) -> SignedMeter:
    """A prosumer registers a meter with a fresh key through the API; the operator activates it."""
    op = await api.operator()
    zone = await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)
    assert zone.status_code in (201, 409), zone.text
    owner = await api.signup(Role.PROSUMER)
    seed = os.urandom(32)
    placeholder = MeterSigner("pending", seed)
    response = await api.http.post(
        "/api/v1/meters",
        json={
            "serial": f"SN-{seed[:6].hex()}",
            "zone_id": "main",
            "rated_capacity_w": RATED_CAPACITY_W,
            "public_key": placeholder.public_key.hex(),
        },
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    meter_id = response.json()["id"]
    if activate:
        activated = await api.http.post(f"/api/v1/meters/{meter_id}/activate", headers=op.headers)
        assert activated.status_code == 200, activated.text
    return SignedMeter(meter_id, owner, MeterSigner(meter_id, seed), "main")


@pytest.fixture
async def meter(api: ApiClient) -> SignedMeter:
    return await register_meter(api)


async def meter_energy(api: ApiClient, meter: SignedMeter) -> list[dict[str, int]]:
    """The meter's energy per epoch, as its owner reads it through the API."""
    response = await api.http.get(f"/api/v1/meters/{meter.id}/energy", headers=meter.owner.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, int]] = response.json()["items"]
    return items
