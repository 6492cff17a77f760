"""96-quarter-hour schedules: checked on both sides, kept on the node's disk, replaced
only by a newer version, and run by the node through a lost link and a restart of its
daemon, each slot reported once the link is back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.client import ApiClient
from service.conftest import ManualClock, in_process_app
from service.live import free_port, serving
from wattx.bus.events import EventType
from wattx.bus.memory import InProcessBus
from wattx.config import Settings
from wattx.nodes.daemon.runner import NodeDaemon, NodeStoppedError
from wattx.nodes.daemon.store import NodeStore
from wattx.nodes.errors import InvalidCommandError
from wattx.nodes.schedule import SLOTS, parse_schedule

from .conftest import Service, enrol, running
from .helpers import applying_device, command, command_state, eventually, sqlite_only


def _quarter(at: datetime) -> datetime:
    return at.replace(minute=at.minute - at.minute % 15, second=0, microsecond=0)


def _payload(
    start: datetime, setpoints: list[int | None], *, version: int = 1, device: str = "bat-1"
) -> dict[str, Any]:
    return {
        "version": version,
        "start": start.isoformat(),
        "devices": [{"zone": "main", "device_id": device, "setpoints_w": setpoints}],
    }


START = datetime(2026, 6, 1, tzinfo=UTC)


def test_a_schedule_is_96_quarter_hours_from_a_utc_quarter_hour() -> None:
    schedule = parse_schedule(_payload(START, [1000] * SLOTS))
    assert schedule.end == START + timedelta(days=1)
    assert schedule.slot_at(START) == 0
    assert schedule.slot_at(START + timedelta(minutes=14, seconds=59)) == 0
    assert schedule.slot_at(START + timedelta(minutes=15)) == 1
    assert schedule.slot_at(START + timedelta(hours=23, minutes=59)) == 95
    assert schedule.slot_at(START - timedelta(seconds=1)) is None
    assert schedule.slot_at(schedule.end) is None
    assert parse_schedule(schedule.to_payload()) == schedule


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"devices": [{"zone": "main", "device_id": "b", "setpoints_w": [1] * 95}]}, "exactly 96"),
        ({"devices": [{"zone": "main", "device_id": "b", "setpoints_w": [1] * 97}]}, "exactly 96"),
        ({"start": "2026-06-01T00:07:00+00:00"}, "quarter hour"),
        ({"start": "2026-06-01T02:00:00+02:00"}, "UTC"),
        ({"start": "2026-06-01T00:00:00"}, "UTC"),
        ({"version": 0}, "positive"),
        ({"version": True}, "positive"),
        ({"devices": []}, "1 to 16"),
        (
            {"devices": [{"zone": "main", "device_id": "b", "setpoints_w": [True] * 96}]},
            "whole number",
        ),
        (
            {"devices": [{"zone": "main", "device_id": "b", "setpoints_w": [1_000_001] * 96}]},
            "within",
        ),
        (
            {
                "devices": [
                    {
                        "zone": "main",
                        "device_id": "b",
                        "max_power_w": 500,
                        "setpoints_w": [501] * 96,
                    }
                ]
            },
            "within ±500",
        ),
        (
            {"devices": [{"zone": "main", "device_id": "b/c", "setpoints_w": [1] * 96}]},
            "device_id",
        ),
        (
            {"devices": [{"zone": "main", "device_id": "b", "setpoints_w": [1] * 96}] * 2},
            "twice",
        ),
        ({"extra": 1}, "payload is"),
    ],
)
def test_a_bad_schedule_is_refused_with_the_reason(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidCommandError, match=message):
        parse_schedule(_payload(START, [0] * SLOTS) | change)


def test_the_store_replaces_a_schedule_only_with_a_newer_version(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.sqlite3", max_batches=10)
    try:
        first = store.replace_schedule(2, "c2", _payload(START, [1] * SLOTS, version=2), START)
        assert first is None
        assert store.replace_schedule(2, "c2b", _payload(START, [5] * SLOTS, version=2), START) == 2
        assert store.replace_schedule(1, "c1", _payload(START, [5] * SLOTS), START) == 2
        kept = store.schedule()
        assert kept is not None
        assert (kept.version, kept.command_id, kept.body["devices"][0]["setpoints_w"][0]) == (
            2,
            "c2",
            1,
        )
        assert (
            store.replace_schedule(3, "c3", _payload(START, [7] * SLOTS, version=3), START) is None
        )
    finally:
        store.close()
    # On disk: a new store on the same file finds version 3.
    again = NodeStore(tmp_path / "node.sqlite3", max_batches=10)
    try:
        kept = again.schedule()
        assert kept is not None
        assert kept.version == 3
    finally:
        again.close()


@sqlite_only
async def test_the_service_refuses_a_bad_schedule(service: Service, tmp_path: Path) -> None:
    node = await enrol(service.api, tmp_path)
    bad = _payload(START, [0] * 95)
    refused = await service.api.http.post(
        f"/api/v1/nodes/{node.node_id}/commands",
        json={"type": "schedule", "payload": bad},
        headers=node.owner.headers,
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "invalid_command"
    good = await command(
        service, node.owner, node.node_id, type="schedule", payload=_payload(START, [0] * 96)
    )
    assert good["state"] == "queued"


class NodeClock:
    """The node's clock in these tests: moved by hand, from one quarter hour to the next."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@contextlib.asynccontextmanager
async def _service_with_events(
    settings: Settings, clock: ManualClock, port: int
) -> AsyncIterator[tuple[Service, list[dict[str, Any]]]]:
    """The service on ``port``, with the ``schedule.slots`` events it hears from its
    first moment (the bus is subscribed before the server accepts a link)."""
    bus = InProcessBus()
    reports: list[dict[str, Any]] = []
    events = bus.subscribe()

    async def watch() -> None:
        async for event in events:
            if event.type is EventType.NODE_EVENT and event.data["name"] == "schedule.slots":
                reports.append(event.data["data"])

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    app = in_process_app(settings, clock=clock, run_epoch_clock=False, bus=bus)
    try:
        async with (
            serving(app, port=port) as url,
            httpx.AsyncClient(base_url=url, timeout=30) as http,
        ):
            yield Service(app, url, ApiClient(http, app.state.wattx)), reports
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


def _slots(reports: list[dict[str, Any]]) -> dict[int, str]:
    return {run["slot"]: run["status"] for report in reports for run in report["runs"]}


def _setpoints(got: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [
        (e["payload"]["slot"], e["payload"]["setpoint_w"]) for e in got if e["type"] == "setpoint"
    ]


@sqlite_only
async def test_the_node_runs_its_schedule_through_a_lost_link_and_a_restart(
    settings: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    port = free_port()
    prefix = f"wattx-test-{uuid.uuid4().hex[:8]}"
    start = _quarter(datetime.now(UTC))
    node_clock = NodeClock(start + timedelta(minutes=1))
    setpoints: list[int | None] = [1000 * (s + 1) for s in range(SLOTS)]
    setpoints[2] = None  # slot 2: the device's local policy, nothing is sent
    async with running(settings, clock, port=port) as service:
        node = await enrol(service.api, tmp_path, mqtt_prefix=prefix)
    config = replace(node.config, server=f"http://127.0.0.1:{port}", control_cycle_s=0.05)

    def daemon() -> NodeDaemon:
        # Redials at most 1 s apart: with the default 30 s cap (full jitter), a daemon that
        # failed for long while the service was away could wait longer than the 15 s the
        # test gives the link once the service is back (it did, under load).
        return NodeDaemon(config, backoff_initial_s=0.05, backoff_max_s=1.0, clock=node_clock)

    async def stop(task: asyncio.Task[None]) -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, NodeStoppedError):
            await task

    async with applying_device(prefix) as got:
        first = daemon()
        task = asyncio.create_task(first.run())
        try:
            async with _service_with_events(settings, clock, port) as (service, reports):
                await asyncio.wait_for(first.linked.wait(), timeout=15)
                issued = await command(
                    service,
                    node.owner,
                    node.node_id,
                    type="schedule",
                    payload=_payload(start, setpoints),
                )

                async def slot0_reported() -> bool:
                    return _slots(reports).get(0) == "applied"

                await eventually(slot0_reported)
                row = await command_state(service, node.owner, node.node_id, issued["id"])
                assert row["state"] == "applied"
                assert row["result"]["version"] == 1
            # The service is gone; the node goes on by its own clock.
            await eventually(lambda: _not_linked(first), within_s=5)
            node_clock.at = start + timedelta(minutes=16)

            async def has(slot: int) -> bool:
                return slot in dict(_setpoints(got))

            await eventually(lambda: has(1))
            node_clock.at = start + timedelta(minutes=31)  # slot 2: nothing to send
            await asyncio.sleep(0.3)
            assert not await has(2)
            node_clock.at = start + timedelta(minutes=46)
            await eventually(lambda: has(3))

            async def slot3_done() -> bool:
                return [r.slot for r in first.store.slot_runs(1, status="applied")] == [0, 1, 3]

            await eventually(slot3_done)
            await stop(task)
            # The daemon restarts (still no link): the schedule is on its disk.
            node_clock.at = start + timedelta(minutes=61)
            second = daemon()
            task = asyncio.create_task(second.run())
            await eventually(lambda: has(4))
            assert second.store.slot_reports(SLOTS) != []  # waiting for the link
            # The link comes back: every executed slot is reported, once.
            async with _service_with_events(settings, clock, port) as (service, reports):
                await asyncio.wait_for(second.linked.wait(), timeout=15)

                async def all_reported() -> bool:
                    return sorted(_slots(reports)) == [1, 3, 4]

                await eventually(all_reported)
                assert set(_slots(reports).values()) == {"applied"}
                assert second.store.slot_reports(SLOTS) == []
        finally:
            await stop(task)
    assert _setpoints(got) == [(0, 1000), (1, 2000), (3, 4000), (4, 5000)]
    envelope = next(e for e in got if e["type"] == "setpoint" and e["payload"]["slot"] == 3)
    assert envelope["expires_at"] == (start + timedelta(minutes=60)).isoformat()
    assert envelope["payload"]["until"] == envelope["expires_at"]


async def _not_linked(daemon: NodeDaemon) -> bool:
    return not daemon.linked.is_set()


@sqlite_only
async def test_a_newer_version_replaces_the_schedule_and_an_older_one_is_refused(
    settings: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    prefix = f"wattx-test-{uuid.uuid4().hex[:8]}"
    start = _quarter(datetime.now(UTC))
    node_clock = NodeClock(start + timedelta(minutes=1))
    async with running(settings, clock) as service, applying_device(prefix) as got:
        node = await enrol(service.api, tmp_path, mqtt_prefix=prefix)
        config = replace(node.config, server=service.url, control_cycle_s=0.05)
        daemon = NodeDaemon(config, backoff_initial_s=0.05, clock=node_clock)
        task = asyncio.create_task(daemon.run())
        try:
            await asyncio.wait_for(daemon.linked.wait(), timeout=15)

            async def outcome(payload: dict[str, Any]) -> dict[str, Any]:
                issued = await command(
                    service, node.owner, node.node_id, type="schedule", payload=payload
                )

                async def done() -> bool:
                    row = await command_state(service, node.owner, node.node_id, issued["id"])
                    return row["state"] in ("applied", "rejected")

                await eventually(done)
                return await command_state(service, node.owner, node.node_id, issued["id"])

            assert (await outcome(_payload(start, [100] * SLOTS, version=2)))["state"] == "applied"

            async def slot0_under_version_2() -> bool:
                return (0, 100) in _setpoints(got)

            # Seen before version 3 is sent: on a loaded machine the control cycle may not
            # have run in between, and slot 0 would then never have run under version 2.
            await eventually(slot0_under_version_2)
            older = await outcome(_payload(start, [200] * SLOTS, version=1))
            assert older["state"] == "rejected"
            assert "version 2 is in force" in older["detail"]
            ended = await outcome(_payload(start - timedelta(days=2), [1] * SLOTS, version=9))
            assert ended["state"] == "rejected"
            assert "ended" in ended["detail"]
            newer = await outcome(_payload(start, [300] * SLOTS, version=3))
            assert newer["state"] == "applied"
            node_clock.at = start + timedelta(minutes=16)

            async def slot1() -> bool:
                return (1, 300) in _setpoints(got)

            await eventually(slot1)
            kept = daemon.store.schedule()
            assert kept is not None
            assert kept.version == 3
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, NodeStoppedError):
                await task
    # Slot 0 ran under version 2, slot 1 under version 3; version 1 never ran.
    assert _setpoints(got) == [(0, 100), (0, 300), (1, 300)]


def _doc_example(doc: str, name: str) -> dict[str, Any]:
    match = re.search(rf"<!-- example:{re.escape(name)} -->\n```json\n(.*?)\n```", doc, re.DOTALL)
    assert match is not None, f"example {name!r} missing"
    parsed: dict[str, Any] = json.loads(match.group(1))
    return parsed


def test_the_documented_schedule_and_setpoint_examples_hold() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    schedule = parse_schedule(_doc_example((docs / "nodes.md").read_text(), "schedule"))
    assert len(schedule.devices[0].setpoints_w) == SLOTS
    setpoint = _doc_example((docs / "device-protocol.md").read_text(), "setpoint")
    assert set(setpoint) == {"id", "type", "payload", "issued_at", "expires_at"}
    slot = setpoint["payload"]["slot"]
    assert setpoint["id"].endswith(f"-{slot:02d}")
    assert setpoint["payload"]["setpoint_w"] == schedule.devices[0].setpoints_w[slot]
    assert setpoint["payload"]["until"] == schedule.slot_end(slot).isoformat()
    assert setpoint["expires_at"] == setpoint["payload"]["until"]
    assert schedule.slot_at(datetime.fromisoformat(setpoint["issued_at"])) == slot
