"""A real daemon killed with SIGKILL at a chosen point of a command runs it once after restart.

The daemon runs in its own process (``wattx.cli.node run``) with one function wrapped so
that the process sends itself SIGKILL there, once (a marker file records that it did);
started again without the marker's effect, it must finish the command, and its own store
must show the command run exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from contextlib import closing
from pathlib import Path

from .conftest import Service, enrol
from .helpers import command, command_state, eventually, sqlite_only, stats

_LAUNCHER = """
import os, signal, sys
from pathlib import Path
from wattx.cli import node
from wattx.nodes.daemon import runner, store

marker, point, data_dir = Path(sys.argv[1]), sys.argv[2], sys.argv[3]

def die():
    if not marker.exists():
        marker.write_text(point)
        os.kill(os.getpid(), signal.SIGKILL)

if point == "stored":
    # After the command is committed to the store, before node_durable is sent.
    accept = store.NodeStore.accept_command
    def accept_then_die(self, body):
        accepted = accept(self, body)
        die()
        return accepted
    store.NodeStore.accept_command = accept_then_die
elif point == "running":
    # In the middle of the command's run: acked, not finished.
    diagnostic = runner.NodeDaemon._diagnostic
    def die_in_run(self, name):
        die()
        return diagnostic(self, name)
    runner.NodeDaemon._diagnostic = die_in_run
sys.argv = ["wattx-node", "run", "--data-dir", data_dir, "--log-level", "WARNING"]
node.main()
"""


async def _spawn(data_dir: Path, point: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _LAUNCHER,
        str(data_dir / "killed"),
        point,
        str(data_dir),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stderr=open(data_dir / "daemon.log", "ab"),  # noqa: ASYNC230
    )


def _stored(data_dir: Path, command_id: str) -> tuple[str, int] | None:
    """The command's state and run count in the daemon's store on disk."""
    path = data_dir / "node.sqlite3"
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        row = db.execute("SELECT state, runs FROM commands WHERE id = ?", (command_id,)).fetchone()
    return None if row is None else (str(row[0]), int(row[1]))


async def _killed_at(point: str, service: Service, tmp_path: Path) -> None:
    data_dir = tmp_path / "node"
    node = await enrol(service.api, data_dir, server=service.url)
    process = await _spawn(data_dir, point)
    try:

        async def linked() -> bool:
            return bool((await stats(service, node.owner, node.node_id))["linked"])

        await eventually(linked, within_s=30)
        issued = await command(
            service, node.owner, node.node_id, type="diagnostics", payload={"name": "buffer"}
        )
        assert await asyncio.wait_for(process.wait(), timeout=30) == -signal.SIGKILL
        assert (data_dir / "killed").read_text() == point
        # On disk at the kill: the command, not finished, its run not counted.
        assert _stored(data_dir, issued["id"]) == ("node_durable", 0)
        # The service has no outcome (its node_durable ack may have left or not: a run
        # starts as the command is stored, the ack right after).
        before = await command_state(service, node.owner, node.node_id, issued["id"])
        assert before["state"] in ("queued", "sent", "node_durable")

        process = await _spawn(data_dir, point)

        async def applied() -> bool:
            row = await command_state(service, node.owner, node.node_id, issued["id"])
            return bool(row["state"] == "applied")

        await eventually(applied, within_s=30)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await process.wait()
    assert _stored(data_dir, issued["id"]) == ("applied", 1)
    row = await command_state(service, node.owner, node.node_id, issued["id"])
    assert row["result"] == {"depth": 0, "lost": 0}
    body = await stats(service, node.owner, node.node_id)
    assert (body["commands_applied"], body["commands_failed"]) == (1, 0)


@sqlite_only
async def test_a_daemon_killed_between_storing_a_command_and_acking_it_runs_it_once(
    service: Service, tmp_path: Path
) -> None:
    await _killed_at("stored", service, tmp_path)


@sqlite_only
async def test_a_daemon_killed_in_the_middle_of_a_diagnostics_run_runs_it_once(
    service: Service, tmp_path: Path
) -> None:
    await _killed_at("running", service, tmp_path)
