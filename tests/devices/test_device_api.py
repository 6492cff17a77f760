"""The device routes: registration, ownership, setpoint limits, command ids and expiry,
and a device whose command goes unacknowledged becoming at risk. Every refusal has
its stable code and changes nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from chain_service.flow import PUBLIC_KEY_HEX
from nodes.conftest import enrol
from service.client import ApiClient, User
from service.conftest import ManualClock
from service.helpers import FLAT_ZONE, assert_problem
from wattx.services.principal import Role

sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _meter(api: ApiClient, owner: User, serial: str) -> str:
    op = await api.operator()
    await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)
    r = await api.http.post(
        "/api/v1/meters",
        json={
            "serial": serial,
            "zone_id": "main",
            "rated_capacity_w": 20_000,
            "public_key": PUBLIC_KEY_HEX,
        },
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    meter_id: str = r.json()["id"]
    return meter_id


BATTERY = {
    "name": "battery",
    "kind": "battery",
    "rated_power_w": 5_000,
    "capacity_wh": 10_000,
    "reserve_wh": 2_000,
    "soc_wh": 6_000,
}


async def _devices(api: ApiClient, user: User) -> list[dict[str, Any]]:
    r = await api.http.get("/api/v1/devices", headers=user.headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


@sqlite_only
async def test_registration_and_ownership(api: ApiClient) -> None:
    alice = await api.signup(Role.PROSUMER)
    bob = await api.signup(Role.PROSUMER)
    meter = await _meter(api, alice, "A-1")
    bad = [
        {**BATTERY, "capacity_wh": 0},
        {**BATTERY, "reserve_wh": 20_000},
        {**BATTERY, "kind": "relay"},  # a relay has no capacity
        {**BATTERY, "soc_wh": 10_001},
        {**BATTERY, "node_id": "no-such-node"},
    ]
    for body in bad:
        r = await api.http.post(
            "/api/v1/devices", json={**body, "meter_id": meter}, headers=alice.headers
        )
        assert_problem(r, 422, "invalid_device")
    # Bob cannot put a device behind Alice's meter.
    r = await api.http.post(
        "/api/v1/devices", json={**BATTERY, "meter_id": meter}, headers=bob.headers
    )
    assert_problem(r, 422, "invalid_device")
    assert await _devices(api, alice) == []
    assert await _devices(api, bob) == []

    r = await api.http.post(
        "/api/v1/devices", json={**BATTERY, "meter_id": meter}, headers=alice.headers
    )
    assert r.status_code == 201, r.text
    device = r.json()
    assert (device["status"], device["owner_id"], device["protocol"]) == (
        "active",
        alice.id,
        "mqtt",
    )
    # Someone else's device is not found, for reading and changing alike.
    for method, body in (("GET", None), ("PATCH", {"reserve_wh": 0}), ("DELETE", None)):
        r = await api.http.request(
            method, f"/api/v1/devices/{device['id']}", json=body, headers=bob.headers
        )
        assert_problem(r, 404, "device_not_found")
    r = await api.http.patch(
        f"/api/v1/devices/{device['id']}", json={"reserve_wh": 10_001}, headers=alice.headers
    )
    assert_problem(r, 422, "invalid_device")
    r = await api.http.patch(
        f"/api/v1/devices/{device['id']}", json={"reserve_wh": 3_000}, headers=alice.headers
    )
    assert r.json()["reserve_wh"] == 3_000
    op = await api.operator()
    assert [d["id"] for d in await _devices(api, op)] == [device["id"]]
    r = await api.http.delete(f"/api/v1/devices/{device['id']}", headers=alice.headers)
    assert r.json()["status"] == "removed"
    assert await _devices(api, alice) == []


@sqlite_only
async def test_commands_are_checked_and_an_unacked_one_puts_the_device_at_risk(
    api: ApiClient, clock: ManualClock, tmp_path: Path
) -> None:
    alice = await api.signup(Role.PROSUMER)
    bob = await api.signup(Role.PROSUMER)
    meter = await _meter(api, alice, "A-1")
    node = await enrol(api, tmp_path / "node")
    op = await api.operator()
    r = await api.http.put(f"/api/v1/nodes/{node.node_id}/meters/{meter}", headers=op.headers)
    assert r.status_code == 200, r.text
    r = await api.http.post(
        "/api/v1/devices",
        json={**BATTERY, "meter_id": meter, "node_id": node.node_id},
        headers=alice.headers,
    )
    assert r.status_code == 201, r.text
    device = r.json()["id"]
    url = f"/api/v1/devices/{device}/commands"
    later = (clock.now() + timedelta(minutes=5)).isoformat()

    def schedule(power_w: int, **extra: Any) -> dict[str, Any]:
        return {
            "id": "c-1",
            "type": "schedule",
            "payload": {"power_w": power_w, "seconds": 900},
            "expires_at": later,
            **extra,
        }

    # Over the rated power; below the reserve (6,000 - 5,000 < 2,000); above the capacity.
    for power, seconds, why in (
        (5_001, 900, "rated"),
        (5_000, 3_600, "reserve"),
        (-5_000, 3_600, "capacity"),
    ):
        body = {**schedule(power), "payload": {"power_w": power, "seconds": seconds}}
        r = await api.http.post(url, json=body, headers=alice.headers)
        assert_problem(r, 422, "setpoint_out_of_limits")
        assert why in r.json()["detail"]
    r = await api.http.post(url, json=schedule(1_000, type="reboot"), headers=alice.headers)
    assert_problem(r, 422, "invalid_device")
    stale = (clock.now() - timedelta(seconds=1)).isoformat()
    r = await api.http.post(url, json=schedule(1_000, expires_at=stale), headers=alice.headers)
    assert_problem(r, 409, "stale_command")
    r = await api.http.post(url, json=schedule(1_000), headers=bob.headers)
    assert_problem(r, 404, "device_not_found")
    listed = await api.http.get(url, headers=alice.headers)
    assert listed.json()["items"] == []

    r = await api.http.post(url, json=schedule(4_000), headers=alice.headers)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "sent"
    r = await api.http.post(url, json=schedule(1_000), headers=alice.headers)
    assert_problem(r, 409, "duplicate_command")
    # The node command carrying it waits for the node.
    r = await api.http.get(f"/api/v1/nodes/{node.node_id}/commands", headers=op.headers)
    (carried,) = r.json()["items"]
    assert carried["type"] == "device.command"
    assert carried["payload"]["payload"]["command_id"] == "c-1"

    # Nobody acknowledges before expiry: the device is at risk and the operator sees it.
    clock.advance(301)
    assert await api.state.delivery.sweep() == 1
    listed = await api.http.get(url, headers=alice.headers)
    (cmd,) = listed.json()["items"]
    assert cmd["status"] == "failed"
    assert cmd["detail"]
    alice = await api.login(alice.email, Role.PROSUMER)
    op = await api.login(op.email, Role.OPERATOR)
    r = await api.http.get("/api/v1/devices/at-risk", headers=op.headers)
    assert [d["id"] for d in r.json()["items"]] == [device]
    r = await api.http.get("/api/v1/devices/at-risk", headers=alice.headers)
    assert_problem(r, 403, "forbidden")
    assert await api.state.delivery.sweep() == 0
