"""Setpoints are leases: an actuation carries one (at most twice the heartbeat interval);
when it lapses or the link drops, the node releases the device and reports it."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from service.conftest import ManualClock
from service.live import free_port
from wattx.bus.events import EventType
from wattx.config import Settings
from wattx.nodes.commands import with_lease
from wattx.nodes.daemon.runner import NodeDaemon, NodeStoppedError
from wattx.nodes.errors import InvalidCommandError

from .conftest import Service, enrol, running
from .helpers import (
    applying_device,
    command,
    command_state,
    daemon_running,
    eventually,
    sqlite_only,
)


def _start(lease_s: int | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"zone": "main", "device_id": "bat-1", "type": "transfer.start"}
    if lease_s is not None:
        payload["lease_s"] = lease_s
    return payload


def test_an_actuation_gets_a_lease_of_at_most_two_heartbeats() -> None:
    assert with_lease("device.command", _start(), heartbeat_interval_s=30)["lease_s"] == 60
    assert with_lease("device.command", _start(5), heartbeat_interval_s=30)["lease_s"] == 5
    for bad in (0, 61, True, "5"):
        with pytest.raises(InvalidCommandError):
            with_lease("device.command", _start(bad), heartbeat_interval_s=30)  # type: ignore[arg-type]
    lock = {"zone": "main", "device_id": "bat-1", "type": "lock", "lease_s": 5}
    with pytest.raises(InvalidCommandError, match="only an actuation"):
        with_lease("device.command", lock, heartbeat_interval_s=30)
    unleased = {"zone": "main", "device_id": "bat-1", "type": "lock"}
    assert with_lease("device.command", unleased, heartbeat_interval_s=30) == unleased


@sqlite_only
async def test_the_service_gives_and_checks_leases(service: Service, tmp_path: Path) -> None:
    node = await enrol(service.api, tmp_path)
    issued = await command(
        service, node.owner, node.node_id, type="device.command", payload=_start()
    )
    assert issued["payload"]["lease_s"] == 60
    for payload in (_start(61), {**_start(5), "type": "lock"}):
        refused = await service.api.http.post(
            f"/api/v1/nodes/{node.node_id}/commands",
            json={"type": "device.command", "payload": payload},
            headers=node.owner.headers,
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "invalid_command"


def _releases(got: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in got if e["type"] == "release"]


async def _applied(service: Service, node: Any, command_id: str) -> bool:
    row = await command_state(service, node.owner, node.node_id, command_id)
    return bool(row["state"] == "applied")


@sqlite_only
async def test_a_lapsed_lease_releases_the_device_and_is_reported(
    service: Service, tmp_path: Path
) -> None:
    prefix = f"wattx-test-{uuid.uuid4().hex[:8]}"
    node = await enrol(service.api, tmp_path, mqtt_prefix=prefix)
    reports: list[dict[str, Any]] = []

    async def watch() -> None:
        async for event in service.state.bus.subscribe():
            if event.type is EventType.NODE_EVENT and event.data["name"] == "lease.released":
                reports.append(event.data["data"])
                return

    watcher = asyncio.create_task(watch())
    async with (
        applying_device(prefix) as got,
        daemon_running(node, service, control_cycle_s=0.2) as daemon,
    ):
        issued = await command(
            service, node.owner, node.node_id, type="device.command", payload=_start(1)
        )
        await eventually(lambda: _applied(service, node, issued["id"]))

        async def released() -> bool:
            return len(_releases(got)) >= 1

        await eventually(released)
        await asyncio.wait_for(watcher, timeout=15)
        assert daemon.store.leases() == []
    release = _releases(got)[0]
    assert release["payload"] == {"command_id": issued["id"], "reason": "lease_lapsed"}
    assert reports[0]["command_id"] == issued["id"]
    assert reports[0]["reason"] == "lease_lapsed"
    # The device got the actuation first.
    assert got[0]["id"] == issued["id"]


@sqlite_only
async def test_a_renewed_lease_holds_and_a_lost_link_releases_at_once(
    settings: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    port = free_port()
    prefix = f"wattx-test-{uuid.uuid4().hex[:8]}"
    async with running(settings, clock, port=port) as service:
        node = await enrol(service.api, tmp_path, mqtt_prefix=prefix)
    config = replace(node.config, server=f"http://127.0.0.1:{port}", control_cycle_s=0.2)
    daemon = NodeDaemon(config, backoff_initial_s=0.05)
    async with applying_device(prefix) as got:
        task = asyncio.create_task(daemon.run())
        try:
            async with running(settings, clock, port=port) as service:
                await asyncio.wait_for(daemon.linked.wait(), timeout=15)
                first = await command(
                    service, node.owner, node.node_id, type="device.command", payload=_start(60)
                )
                await eventually(lambda: _applied(service, node, first["id"]))
                second = await command(
                    service, node.owner, node.node_id, type="device.command", payload=_start(60)
                )
                await eventually(lambda: _applied(service, node, second["id"]))
                # The second actuation renewed the lease: one lease, no release.
                assert [lease.command_id for lease in daemon.store.leases()] == [second["id"]]
                await asyncio.sleep(0.5)
                assert _releases(got) == []
            # The service is gone: the link dropped and the device is released within a cycle.

            async def released() -> bool:
                return len(_releases(got)) >= 1

            await eventually(released, within_s=5)
            assert _releases(got)[0]["payload"]["reason"] == "link_lost"
            assert len(daemon.store.lease_reports()) == 1
            # The report waits for the next link.
            async with running(settings, clock, port=port) as service:
                await asyncio.wait_for(daemon.linked.wait(), timeout=15)

                async def reported() -> bool:
                    return daemon.store.lease_reports() == []

                await eventually(reported)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, NodeStoppedError):
                await task
