"""Two real `wattx up` processes sharing PostgreSQL and Redis: a node linked to one
gets a command issued through the other, and runs it once."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.live import Up, wattx_cli
from wattx.nodes import challenge
from wattx.nodes.daemon.config import KEY_NAME, NodeConfig, write_key
from wattx.nodes.daemon.runner import NodeDaemon, NodeStoppedError

from .helpers import eventually

PASSWORD = "correct horse battery staple"
REDIS_URL = "redis://127.0.0.1:6379/0"
pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]


READY_WITHIN_S = 360.0
"""Start-up alone took over 180 s on a loaded 2-CPU machine in a parallel run."""


@pytest.fixture
def two_processes(pg_url: str, tmp_path: Path) -> Iterator[tuple[Up, Up]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATTX_")}
    env.update(
        WATTX_DATA_DIR=str(tmp_path / "data"),
        WATTX_DATABASE_URL=pg_url,
        WATTX_REDIS_URL=REDIS_URL,
        # Channels and keys of its own on the shared server.
        WATTX_REDIS_PREFIX=f"wattx-test-{uuid.uuid4().hex}",
        WATTX_LOG_LEVEL="WARNING",
        # Replicas share their token key (docs/operations.md), set rather than generated.
        WATTX_JWT_SECRET=f"two-processes-{uuid.uuid4().hex}",
        # Only the bus may bring the command in time.
        WATTX_NODE_COMMAND_POLL_S="600",
        WATTX_NODE_LINK_RECHECK_S="600",
    )
    # The session's database is migrated already (and both commands migrate first): the
    # operator is created while the first process starts. The second starts once the
    # first is ready, so that only one seeds the default zone.
    first = Up(env)
    try:
        done = subprocess.run(
            wattx_cli(
                "admin", "create-operator", "--email", "op@wattx.test", "--password", PASSWORD
            ),
            env=env,
            capture_output=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()
        first.wait_ready(READY_WITHIN_S)
        second = Up(env)
        try:
            second.wait_ready(READY_WITHIN_S)
            yield first, second
        finally:
            second.stop()
    finally:
        first.stop()


async def _enrol(
    http: httpx.AsyncClient, data_dir: Path, server: str
) -> tuple[NodeConfig, dict[str, str]]:
    login = await http.post(
        "/api/v1/auth/login", json={"email": "op@wattx.test", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    op = {"Authorization": f"Bearer {login.json()['access_token']}"}
    signup = await http.post(
        "/api/v1/auth/signup",
        json={
            "email": "site@wattx.test",
            "password": PASSWORD,
            "display_name": "site",
            "role": "node_operator",
        },
    )
    assert signup.status_code == 201, signup.text
    owner = signup.json()["id"]
    admitted = await http.patch(
        f"/api/v1/admin/users/{owner}", json={"status": "admitted"}, headers=op
    )
    assert admitted.status_code == 200, admitted.text
    token = await http.post(
        "/api/v1/nodes/registration-tokens",
        json={"owner_id": owner, "name": "school-roof"},
        headers=op,
    )
    assert token.status_code == 201, token.text
    seed = os.urandom(32)
    enrolled = await http.post(
        "/api/v1/nodes/enrol",
        json={
            "registration_token": token.json()["token"],
            "public_key": challenge.public_key_hex(seed),
        },
    )
    assert enrolled.status_code == 201, enrolled.text
    write_key(data_dir / KEY_NAME, seed)
    config = NodeConfig(server=server, node_id=enrolled.json()["node_id"], data_dir=str(data_dir))
    config.save()
    return config, op


async def test_a_command_issued_on_one_process_reaches_a_node_linked_to_the_other(
    two_processes: tuple[Up, Up], tmp_path: Path
) -> None:
    first, second = two_processes
    async with httpx.AsyncClient(base_url=first.url, timeout=30) as http:
        config, op = await _enrol(http, tmp_path / "node", second.url)
        daemon = NodeDaemon(config, backoff_initial_s=0.1)
        task = asyncio.create_task(daemon.run())
        try:
            await asyncio.wait_for(daemon.linked.wait(), timeout=30)
            issued = await http.post(
                f"/api/v1/nodes/{config.node_id}/commands",
                json={"type": "diagnostics", "payload": {"name": "ping"}},
                headers=op,
            )
            assert issued.status_code == 201, issued.text
            command_id = issued.json()["id"]

            async def applied() -> bool:
                row = await http.get(
                    f"/api/v1/nodes/{config.node_id}/commands/{command_id}", headers=op
                )
                return bool(row.json()["state"] == "applied")

            await eventually(applied, within_s=30)
            stored = daemon.store.command(command_id)
            assert stored is not None
            assert stored.runs == 1
            node = await http.get(f"/api/v1/nodes/{config.node_id}/stats", headers=op)
            assert node.json()["linked"] is True
            assert node.json()["commands_applied"] == 1
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, NodeStoppedError):
                await task
