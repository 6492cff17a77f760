"""Two API servers sharing PostgreSQL and Redis: a command issued through one reaches a
node linked to the other, and a revocation on one closes the link held by the other."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from service.conftest import ManualClock
from wattx.config import Settings
from wattx.nodes.daemon.runner import NodeDaemon, NodeStoppedError

from .conftest import enrol, running
from .helpers import command, command_state, eventually, stats

REDIS_URL = "redis://127.0.0.1:6379/0"
pytestmark = [pytest.mark.redis, pytest.mark.postgres]


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_command_issued_on_one_process_reaches_a_node_linked_to_another(
    settings: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    shared = settings.model_copy(
        update={
            "redis_url": REDIS_URL,
            # Channels of its own on the shared server: no other test's commands come in.
            "redis_prefix": f"wattx-test-{uuid.uuid4().hex}",
            # Only the bus may bring the command or the revocation in time.
            "node_command_poll_s": 600.0,
            "node_link_recheck_s": 600.0,
        }
    )
    async with running(shared, clock) as first, running(shared, clock) as second:
        node = await enrol(first.api, tmp_path)
        daemon = NodeDaemon(replace(node.config, server=second.url), backoff_initial_s=0.1)
        task = asyncio.create_task(daemon.run())
        try:
            await asyncio.wait_for(daemon.linked.wait(), timeout=15)
            assert second.state.node_links.linked == 1
            assert first.state.node_links.linked == 0
            issued = await command(
                first, node.owner, node.node_id, type="diagnostics", payload={"name": "ping"}
            )

            async def applied() -> bool:
                row = await command_state(first, node.owner, node.node_id, issued["id"])
                return bool(row["state"] == "applied")

            await eventually(applied)
            assert (await stats(first, node.owner, node.node_id))["commands_applied"] == 1
            op = await first.api.operator()
            revoked = await first.api.http.delete(
                f"/api/v1/nodes/{node.node_id}", headers=op.headers
            )
            assert revoked.status_code == 200
            with pytest.raises(NodeStoppedError):
                await asyncio.wait_for(task, timeout=15)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, NodeStoppedError):
                await task
