"""The operator's oversight pages: edge nodes, devices at risk and the audit trail
(with the hash chain's verdict), readable by operators and refused to participants."""

from __future__ import annotations

import os
import uuid

import pytest
from fastapi import FastAPI
from sqlalchemy import update

from service.client import ApiClient
from wattx.nodes import challenge
from wattx.services.principal import Role
from wattx.store.models_devices import DeviceRow
from wattx.store.models_nodes import AuditLogRow

from .helpers import browser_login, two_traders

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

PAGES = ("/operator/nodes", "/operator/devices", "/operator/audit")


async def _enrolled_node(api: ApiClient) -> str:
    owner = await api.signup(Role.NODE_OPERATOR)
    op = await api.operator()
    token = await api.http.post(
        "/api/v1/nodes/registration-tokens",
        json={"owner_id": owner.id, "name": f"site-{uuid.uuid4().hex[:6]}", "ttl_s": 600},
        headers=op.headers,
    )
    assert token.status_code == 201, token.text
    enrolled = await api.http.post(
        "/api/v1/nodes/enrol",
        json={
            "registration_token": token.json()["token"],
            "public_key": challenge.public_key_hex(os.urandom(32)),
        },
    )
    assert enrolled.status_code == 201, enrolled.text
    node_id: str = enrolled.json()["node_id"]
    return node_id


async def test_operator_sees_nodes_devices_at_risk_and_the_audit_trail(
    api: ApiClient, app: FastAPI
) -> None:
    node_id = await _enrolled_node(api)
    op = await api.operator()
    async with browser_login(app, op.email) as browser:
        nodes = await browser.get("/operator/nodes")
        assert nodes.status_code == 200
        assert f'data-node="{node_id}"' in nodes.text
        assert "pending" in nodes.text  # enrolled, never heard from

        devices = await browser.get("/operator/devices")
        assert devices.status_code == 200
        assert "No device at risk" in devices.text

        audit = await browser.get("/operator/audit")
        assert audit.status_code == 200
        assert 'data-ok="true"' in audit.text
        assert "node.registration_token" in audit.text or "node.enrol" in audit.text

        # An edited entry is detected and shown.
        async with api.state.db.write() as session:
            await session.execute(update(AuditLogRow).values(actor="someone-else"))
        broken = await browser.get("/operator/audit")
        assert 'data-ok="false"' in broken.text
        assert "Hash chain broken" in broken.text


async def test_a_device_at_risk_is_listed(api: ApiClient, app: FastAPI) -> None:
    seller, _ = await two_traders(api)
    meter = await api.http.post(
        "/api/v1/meters",
        json={
            "serial": f"m-{uuid.uuid4().hex[:8]}",
            "zone_id": "main",
            "rated_capacity_w": 20_000,
            "public_key": challenge.public_key_hex(os.urandom(32)),
        },
        headers=seller.headers,
    )
    assert meter.status_code == 201, meter.text
    device = await api.http.post(
        "/api/v1/devices",
        json={
            "name": "home battery",
            "kind": "battery",
            "meter_id": meter.json()["id"],
            "rated_power_w": 5_000,
            "capacity_wh": 10_000,
            "reserve_wh": 1_000,
        },
        headers=seller.headers,
    )
    assert device.status_code == 201, device.text
    device_id = device.json()["id"]
    op = await api.operator()
    async with browser_login(app, op.email) as browser:
        assert f'data-device="{device_id}"' not in (await browser.get("/operator/devices")).text
        async with api.state.db.write() as session:
            await session.execute(
                update(DeviceRow).where(DeviceRow.id == device_id).values(status="at_risk")
            )
        listed = await browser.get("/operator/devices")
        assert f'data-device="{device_id}"' in listed.text


async def test_participants_are_refused_the_oversight_pages(api: ApiClient, app: FastAPI) -> None:
    _, buyer = await two_traders(api)
    async with browser_login(app, buyer.email) as browser:
        for path in PAGES:
            refused = await browser.get(path)
            assert refused.status_code == 403, path
