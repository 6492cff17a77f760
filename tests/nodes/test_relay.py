"""Relayed readings: validated as POST /readings/batch validates them, buffered on the
node's disk while the link is down, replayed in order, each accepted once."""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiomqtt

from ingest.conftest import SignedMeter, register_meter
from service.conftest import ManualClock
from service.live import free_port
from wattx.config import Settings
from wattx.metering import reading_batch_to_json
from wattx.nodes.daemon.runner import NodeDaemon

from .conftest import Enrolled, Service, enrol, running
from .helpers import daemon_running, eventually, sqlite_only, stats


def batch(meter: SignedMeter, ts: Any, *, exported_wh: int = 10) -> dict[str, Any]:
    reading = meter.signer.record(ts, exported_wh=exported_wh)
    result: dict[str, Any] = reading_batch_to_json(meter.signer.sign([reading]))
    return result


async def attach(service: Service, node: Enrolled, meter: SignedMeter) -> None:
    op = await service.api.operator()
    response = await service.api.http.put(
        f"/api/v1/nodes/{node.node_id}/meters/{meter.id}", headers=op.headers
    )
    assert response.status_code == 200, response.text
    assert meter.id in response.json()["meter_ids"]


async def readings_of(service: Service, meter: SignedMeter) -> list[dict[str, Any]]:
    response = await service.api.http.get(
        f"/api/v1/meters/{meter.id}/readings", headers=meter.owner.headers
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


@sqlite_only
async def test_a_node_relays_only_what_its_meters_signed(
    service: Service, tmp_path: Path, clock: ManualClock
) -> None:
    node = await enrol(service.api, tmp_path)
    mine = await register_meter(service.api)
    foreign = await register_meter(service.api)
    await attach(service, node, mine)
    t0 = clock.now() - timedelta(minutes=5)
    good = batch(mine, t0)
    forged = batch(mine, t0 + timedelta(minutes=1))
    forged["readings"][0]["export_wh"] += 1_000  # changed after the meter signed it
    other = batch(foreign, t0)
    async with daemon_running(node, service) as daemon:
        for document in (good, forged, other):
            daemon.buffer_batch(document["meter_id"], document)

        async def drained() -> bool:
            return daemon.store.depth() == 0

        await eventually(drained)
        assert daemon.store.counter("batches_refused") == 2
    body = await stats(service, node.owner, node.node_id)
    assert (body["readings_relayed"], body["batches_rejected"], body["foreign_batches"]) == (
        1,
        2,
        1,
    )
    assert [r["seq"] for r in await readings_of(service, mine)] == [1]
    assert [r["via"] for r in await readings_of(service, mine)] == ["node"]
    assert await readings_of(service, foreign) == []


@sqlite_only
async def test_an_offline_node_buffers_on_disk_and_replays_in_order_once(
    settings: Settings, clock: ManualClock, tmp_path: Path
) -> None:
    """Ten minutes of one-minute readings arrive over MQTT while the service is down;
    the meter is acknowledged once each batch is on the node's disk."""
    port = free_port()
    prefix = f"wattx-test-{uuid.uuid4().hex[:8]}"
    async with running(settings, clock, port=port) as service:
        node = await enrol(service.api, tmp_path / "node", mqtt_prefix=prefix)
        meter = await register_meter(service.api)
        await attach(service, node, meter)
    # The service is down: the node holds its buffer.
    daemon = NodeDaemon(
        replace(node.config, server=f"http://127.0.0.1:{port}"), backoff_initial_s=0.05
    )
    task = asyncio.create_task(daemon.run())
    try:
        assert daemon.bridge is not None
        await asyncio.wait_for(daemon.bridge.connected.wait(), timeout=10)
        t0 = clock.now() - timedelta(minutes=10)
        topic = f"{prefix}/main/meters/{meter.id}"
        acks: list[dict[str, Any]] = []
        async with aiomqtt.Client("127.0.0.1", 1883) as device:
            await device.subscribe(f"{topic}/ack", qos=1)
            for minute in range(10):
                document = batch(meter, t0 + timedelta(minutes=minute))
                await device.publish(f"{topic}/readings", json.dumps(document), qos=1)
                message = await asyncio.wait_for(anext(aiter(device.messages)), timeout=10)
                acks.append(json.loads(message.payload))  # type: ignore[arg-type]
        assert [a["ok"] for a in acks] == [True] * 10
        assert daemon.store.depth() == 10
        assert not daemon.linked.is_set()
        async with running(settings, clock, port=port) as service:
            await asyncio.wait_for(daemon.linked.wait(), timeout=30)

            async def drained() -> bool:
                return daemon.store.depth() == 0

            await eventually(drained)
            stored = await readings_of(service, meter)
            assert [r["seq"] for r in stored] == list(range(10, 0, -1))
            assert {r["status"] for r in stored} == {"accepted"}
            body = await stats(service, node.owner, node.node_id)
            assert (body["readings_relayed"], body["batches_rejected"]) == (10, 0)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
