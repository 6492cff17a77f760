"""Desired-state config: versioned, checked, applied atomically by the node, rolled back
by the node when its link does not come back, every step in the audit log."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from service.live import free_port
from wattx.nodes.daemon.config import CONFIG_NAME, NodeConfig
from wattx.nodes.daemon.runner import NodeDaemon, NodeStoppedError
from wattx.nodes.desired import check_config
from wattx.nodes.errors import InvalidNodeConfigError
from wattx.services.principal import Role

from .conftest import Enrolled, Service, enrol
from .helpers import audit_actions, daemon_running, eventually, sqlite_only


async def _put(service: Service, node: Enrolled, config: dict[str, Any]) -> Any:
    return await service.api.http.put(
        f"/api/v1/nodes/{node.node_id}/config", json={"config": config}, headers=node.owner.headers
    )


async def _config(service: Service, node: Enrolled) -> dict[str, Any]:
    response = await service.api.http.get(
        f"/api/v1/nodes/{node.node_id}/config", headers=node.owner.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_only_settable_keys_in_range_pass() -> None:
    assert check_config({"heartbeat_interval_s": 10}) == {"heartbeat_interval_s": 10}
    assert check_config({"server": "https://wattx.example.org", "control_cycle_s": 0.5})
    for bad in (
        {},
        {"node_id": "x"},
        {"data_dir": "/tmp"},
        {"server": "ftp://x"},
        {"server": 5},
        {"heartbeat_interval_s": 1},
        {"heartbeat_interval_s": True},
        {"control_cycle_s": 0},
        {"control_cycle_s": "1"},
    ):
        with pytest.raises(InvalidNodeConfigError):
            check_config(bad)


@sqlite_only
async def test_bad_configs_are_refused_and_change_nothing(service: Service, tmp_path: Path) -> None:
    node = await enrol(service.api, tmp_path)
    for config in ({"heartbeat_interval_s": 1}, {"buffer_max_batches": 5}, {}):
        refused = await _put(service, node, config)
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "invalid_node_config"
    direct = await service.api.http.post(
        f"/api/v1/nodes/{node.node_id}/commands",
        json={"type": "config.apply", "payload": {"version": 1, "config": {}}},
        headers=node.owner.headers,
    )
    assert direct.status_code == 422
    assert direct.json()["code"] == "invalid_command"
    stranger = await service.api.signup(Role.NODE_OPERATOR)
    hidden = await service.api.http.put(
        f"/api/v1/nodes/{node.node_id}/config",
        json={"config": {"heartbeat_interval_s": 10}},
        headers=stranger.headers,
    )
    assert hidden.status_code == 404
    assert (await _config(service, node))["history"] == []
    assert "node.config.set" not in {a["action"] for a in await audit_actions(service)}


@sqlite_only
async def test_a_config_is_applied_atomically_and_reported(
    service: Service, tmp_path: Path
) -> None:
    node = await enrol(service.api, tmp_path)
    async with daemon_running(node, service) as daemon:
        created = await _put(service, node, {"heartbeat_interval_s": 10})
        assert created.status_code == 201, created.text
        assert created.json()["desired"]["version"] == 1

        async def applied() -> bool:
            body = await _config(service, node)
            return body["applied"] is not None and body["applied"]["version"] == 1

        await eventually(applied)
        assert daemon.links_opened >= 2
        assert daemon.config.heartbeat_interval_s == 10
        second = await _put(service, node, {"control_cycle_s": 0.5})
        assert second.json()["desired"]["version"] == 2

        async def second_applied() -> bool:
            return bool((await _config(service, node))["applied"]["version"] == 2)

        await eventually(second_applied)
    on_disk = NodeConfig.load(Path(node.config.data_dir))
    assert (on_disk.config_version, on_disk.heartbeat_interval_s, on_disk.control_cycle_s) == (
        2,
        10,
        0.5,
    )
    assert not (Path(node.config.data_dir) / "node.json.pending").exists()
    actions = [a["action"] for a in await audit_actions(service)]
    assert actions.count("node.config.set") == 2
    assert actions.count("node.config.applied") == 2
    set_entries = [a for a in await audit_actions(service) if a["action"] == "node.config.set"]
    newest = set_entries[0]
    assert newest["before"]["version"] == 1
    assert newest["after"]["version"] == 2


@sqlite_only
async def test_a_config_that_loses_the_link_is_rolled_back_by_the_node(
    service: Service, tmp_path: Path
) -> None:
    node = await enrol(service.api, tmp_path)
    config = replace(node.config, server=service.url)
    config.save()
    daemon = NodeDaemon(config, backoff_initial_s=0.1, config_rollback_s=2.0)
    task = asyncio.create_task(daemon.run())
    try:
        await asyncio.wait_for(daemon.linked.wait(), timeout=15)
        nowhere = f"http://127.0.0.1:{free_port()}"
        created = await _put(service, node, {"server": nowhere})
        assert created.status_code == 201

        async def rolled_back() -> bool:
            body = await _config(service, node)
            return bool(body["history"] and body["history"][0]["state"] == "rejected")

        await eventually(rolled_back, within_s=30)
        body = await _config(service, node)
        assert body["applied"] is None
        assert body["desired"]["detail"].startswith("rolled back to version 0")
        on_disk = json.loads((Path(node.config.data_dir) / CONFIG_NAME).read_text())
        assert (on_disk["server"], on_disk["config_version"]) == (service.url, 0)
        assert daemon.linked.is_set()
        refused = [a for a in await audit_actions(service) if a["action"] == "node.config.refused"]
        assert refused[0]["after"]["result"] == {"version": 0, "rolled_back": 1}
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, NodeStoppedError):
            await task
