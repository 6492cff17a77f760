"""Readings over the real Mosquitto broker at 127.0.0.1:1883 (fails, never skips, without it)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from fastapi import FastAPI

from service.client import ApiClient
from service.conftest import in_process_app
from wattx.config import Settings
from wattx.ingest.mqtt import MAX_IN_FLIGHT, MqttReadingIngest, broker_address
from wattx.metering import encode_reading_batch

from .conftest import INTERVAL, START, ManualClock, register_meter

pytestmark = pytest.mark.mqtt

BROKER = "mqtt://127.0.0.1:1883"


@asynccontextmanager
async def mqtt_app(
    settings: Settings, clock: ManualClock, prefix: str
) -> AsyncIterator[tuple[FastAPI, ApiClient]]:
    """The app with MQTT ingestion on its own topic prefix, which no other service uses:
    another service on the same broker neither hears this test's meters nor answers them."""
    application = in_process_app(
        settings.model_copy(update={"mqtt_url": BROKER, "mqtt_topic_prefix": prefix}),
        clock=clock,
        run_epoch_clock=False,
    )
    async with application.router.lifespan_context(application):
        ingest: MqttReadingIngest = application.state.mqtt_ingest
        await asyncio.wait_for(ingest.subscribed.wait(), timeout=10)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://wattx.test") as http:
            yield application, ApiClient(http, application.state.wattx)


def _prefix() -> str:
    return f"wattx-test-{uuid.uuid4().hex[:8]}"


async def test_round_trip_through_the_broker(settings: Settings, clock: ManualClock) -> None:
    prefix = _prefix()
    async with mqtt_app(settings, clock, prefix) as (_, api):
        meter = await register_meter(api)
        readings = [
            meter.signer.record(START - timedelta(minutes=15) + i * INTERVAL, exported_wh=100)
            for i in range(4)
        ]
        batch = encode_reading_batch(meter.signer.sign(readings))
        topic = f"{prefix}/{meter.zone}/meters/{meter.id}"
        address = broker_address(BROKER)
        async with aiomqtt.Client(address.host, address.port) as device:
            await device.subscribe(f"{topic}/ack", qos=1)
            await device.publish(f"{topic}/readings", batch, qos=1)
            first = await _next_ack(device)
            # A resend after a lost acknowledgement: acknowledged, not stored twice.
            await device.publish(f"{topic}/readings", batch, qos=1)
            second = await _next_ack(device)
            await device.publish(f"{topic}/readings", b'{"version": 1}', qos=1)
            refused = await _next_ack(device)
        assert first == {
            "ok": True,
            "accepted": 4,
            "duplicates": 0,
            "quarantined": 0,
            "last_seq": 4,
        }
        assert second == {
            "ok": True,
            "accepted": 0,
            "duplicates": 4,
            "quarantined": 0,
            "last_seq": 4,
        }
        assert (refused["ok"], refused["code"], refused["status"]) == (
            False,
            "malformed_reading_batch",
            422,
        )
        listed = await api.http.get(
            f"/api/v1/meters/{meter.id}/readings", headers=meter.owner.headers
        )
        items = listed.json()["items"]
        assert [(r["seq"], r["via"]) for r in items] == [
            (4, "mqtt"),
            (3, "mqtt"),
            (2, "mqtt"),
            (1, "mqtt"),
        ]


async def test_batch_on_another_meters_topic_is_refused(
    settings: Settings, clock: ManualClock
) -> None:
    prefix = _prefix()
    async with mqtt_app(settings, clock, prefix) as (_, api):
        meter = await register_meter(api)
        batch = encode_reading_batch(meter.signer.sign([meter.signer.record(START)]))
        topic = f"{prefix}/{meter.zone}/meters/someone-else"
        address = broker_address(BROKER)
        async with aiomqtt.Client(address.host, address.port) as device:
            await device.subscribe(f"{topic}/ack", qos=1)
            await device.publish(f"{topic}/readings", batch, qos=1)
            ack = await _next_ack(device)
        assert (ack["ok"], ack["code"]) == (False, "meter_id_mismatch")


async def _next_ack(client: aiomqtt.Client) -> Any:
    async def first() -> Any:
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            return json.loads(message.payload)
        raise AssertionError("the broker closed the subscription")

    return await asyncio.wait_for(first(), timeout=10)


async def _next_ack_of(client: aiomqtt.Client) -> tuple[str, Any]:
    """The next acknowledgement and the topic it came on."""
    async with asyncio.timeout(10):
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            return message.topic.value, json.loads(message.payload)
    raise AssertionError("the broker closed the subscription")


async def test_meters_are_ingested_side_by_side_each_in_the_order_sent(
    settings: Settings, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = _prefix()
    async with mqtt_app(settings, clock, prefix) as (_, api):
        slow, quick = await register_meter(api), await register_meter(api)
        metering = api.state.metering
        real = metering.ingest
        release = asyncio.Event()
        started: list[str | None] = []

        async def first_of_slow_held(
            document: Any, *, via: str, expected_meter_id: str | None = None
        ) -> Any:
            started.append(expected_meter_id)
            if started == [slow.id]:
                await release.wait()
            return await real(document, via=via, expected_meter_id=expected_meter_id)

        monkeypatch.setattr(metering, "ingest", first_of_slow_held)
        at = START - timedelta(minutes=15)
        slow_readings = [slow.signer.record(at + i * INTERVAL, exported_wh=100) for i in range(4)]
        slow_batches = [
            encode_reading_batch(slow.signer.sign(slow_readings[:2])),
            encode_reading_batch(slow.signer.sign(slow_readings[2:])),
        ]
        quick_batch = encode_reading_batch(
            quick.signer.sign([quick.signer.record(at, exported_wh=100)])
        )
        address = broker_address(BROKER)
        async with aiomqtt.Client(address.host, address.port) as device:
            for meter in (slow, quick):
                await device.subscribe(f"{prefix}/{meter.zone}/meters/{meter.id}/ack", qos=1)
            for batch in slow_batches:
                await device.publish(
                    f"{prefix}/{slow.zone}/meters/{slow.id}/readings", batch, qos=1
                )
            await device.publish(
                f"{prefix}/{quick.zone}/meters/{quick.id}/readings", quick_batch, qos=1
            )
            # The slow meter's first batch is held: the other meter's is answered meanwhile,
            # and the slow meter's second has not started (it waits for the first).
            topic, ack = await _next_ack_of(device)
            assert topic.endswith(f"/{quick.id}/ack")
            assert (ack["ok"], ack["accepted"]) == (True, 1)
            assert started == [slow.id, quick.id]
            release.set()
            answers = [await _next_ack_of(device) for _ in slow_batches]
        assert [topic.endswith(f"/{slow.id}/ack") for topic, _ in answers] == [True, True]
        assert [(a["ok"], a["accepted"], a["last_seq"]) for _, a in answers] == [
            (True, 2, 2),
            (True, 2, 4),
        ]


def test_the_documented_bound_on_messages_in_flight_is_the_services() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    section = " ".join(doc.split("**MQTT.**", 1)[1].split("\n\n", 1)[0].split())
    assert f"(up to {MAX_IN_FLIGHT:,} at once," in section
    assert "a meter's messages are ingested one after the other, in the order they came" in section


def _broker_connections_without_delay() -> dict[int, bool]:
    """For each TCP connection of this process to the broker, by its local port: whether
    it sets TCP_NODELAY."""
    port = broker_address(BROKER).port
    found: dict[int, bool] = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            # A duplicate of the descriptor, its family and type read from it.
            sock = socket.socket(fileno=os.dup(int(fd)))
        except OSError:
            continue
        with sock:
            if sock.family not in (socket.AF_INET, socket.AF_INET6):
                continue
            if sock.type != socket.SOCK_STREAM:
                continue
            try:
                peer_port = sock.getpeername()[1]
            except OSError:
                continue  # not connected
            if peer_port == port:
                no_delay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                found[sock.getsockname()[1]] = bool(no_delay)
    return found


async def test_the_services_broker_connection_sends_without_delay(
    settings: Settings, clock: ManualClock
) -> None:
    before = _broker_connections_without_delay()
    async with mqtt_app(settings, clock, _prefix()):
        during = _broker_connections_without_delay()
    assert [no_delay for port, no_delay in during.items() if port not in before] == [True]
