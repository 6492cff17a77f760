"""Readings over the real Mosquitto broker at 127.0.0.1:1883 (fails, never skips, without it)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import aiomqtt
import httpx
import pytest
from fastapi import FastAPI

from service.client import ApiClient
from service.conftest import in_process_app
from wattx.config import Settings
from wattx.ingest.mqtt import MqttReadingIngest, broker_address
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
