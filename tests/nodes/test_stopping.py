"""The daemon stops on the first request: a task that dropped a cancellation is
cancelled again, and the daemon's own waits keep a cancellation that arrives with
their answer (``wattx.nodes.daemon.stopping``)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from wattx.nodes.daemon.bridge import DeviceBridge
from wattx.nodes.daemon.stopping import stop_tasks


async def _drops_one_cancellation(stopped: list[str]) -> None:
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        stopped.append("dropped")  # as a library would that swallowed it
    await asyncio.Event().wait()


async def _fails() -> None:
    raise RuntimeError("failed before the stop")


async def test_a_task_that_drops_a_cancellation_is_stopped_all_the_same() -> None:
    stopped: list[str] = []
    stubborn = asyncio.create_task(_drops_one_cancellation(stopped))
    failed = asyncio.create_task(_fails())
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await stop_tasks([stubborn, failed])
    assert stopped == ["dropped"]
    assert stubborn.cancelled()
    assert isinstance(failed.exception(), RuntimeError)


async def test_a_device_command_cancelled_as_its_ack_arrives_is_cancelled() -> None:
    """Python 3.11's ``wait_for`` returned the ack here and dropped the cancellation."""

    async def no_event(name: str, data: dict[str, Any]) -> None:
        return None

    bridge = DeviceBridge(
        "mqtt://127.0.0.1:1883", "unused", on_batch=lambda meter, batch: 0, on_event=no_event
    )
    expires_at = datetime.now(UTC) + timedelta(seconds=60)
    sending = asyncio.create_task(
        bridge.command("main", "bat-1", {"id": "c-1"}, expires_at=expires_at)
    )
    await asyncio.sleep(0)  # not connected, so nothing is published: waiting for the ack
    bridge._pending["c-1"].set_result({"id": "c-1", "status": "applied"})
    sending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sending
