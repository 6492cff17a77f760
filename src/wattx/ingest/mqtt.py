"""Meter readings over MQTT: the same ingestion as HTTP, acknowledged on a reply topic.

A meter publishes a signed batch on ``wattx/{zone}/meters/{meter_id}/readings``
(QoS 1); the service runs :meth:`MeteringService.ingest` on it and publishes
the outcome on ``wattx/{zone}/meters/{meter_id}/ack`` (QoS 1)::

    {"ok": true, "accepted": 10, "duplicates": 0, "quarantined": 0, "last_seq": 42}
    {"ok": false, "code": "bad_signature", "status": 403, "title": "...", "detail": "..."}

The connection is re-established with exponential backoff when the broker
goes away; a batch whose acknowledgement was lost is simply sent again; its
readings come back as duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt

from wattx.domain.errors import DomainError
from wattx.ingest.ordered import KeyedTurns
from wattx.services.measurement.metering import MeteringService

_log = logging.getLogger(__name__)

DEFAULT_PREFIX = "wattx"
READINGS_FILTER = f"{DEFAULT_PREFIX}/+/meters/+/readings"
QOS_AT_LEAST_ONCE = 1
MAX_IN_FLIGHT = 1_000
"""Messages being ingested at once; the next one waits for a place."""
NO_DELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
"""The broker connection sends its small packets (acknowledgements, PUBACKs) at once:
held back by Nagle's algorithm until the broker's delayed ACK, each waited up to 40 ms
(docs/operations.md, "Readings over MQTT: meters side by side")."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None


def broker_address(url: str) -> BrokerAddress:
    """Host, port and credentials of ``mqtt://[user[:password]@]host[:port]``."""
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ValueError(f"an MQTT URL looks like mqtt://host:1883, not {url!r}")
    return BrokerAddress(
        host=parts.hostname,
        port=parts.port or 1883,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def readings_filter(prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/+/meters/+/readings"


def ack_topic(zone: str, meter_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/{zone}/meters/{meter_id}/ack"


def _topic_parts(topic: str, prefix: str = DEFAULT_PREFIX) -> tuple[str, str] | None:
    """``(zone, meter_id)`` of a readings topic, or ``None`` if it is not one."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != prefix or parts[2] != "meters" or parts[4] != "readings":
        return None
    return parts[1], parts[3]


class MqttReadingIngest:
    """A background task: subscribe to readings, ingest each batch, acknowledge it."""

    def __init__(
        self,
        metering: MeteringService,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        topic_filter: str | None = None,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
    ) -> None:
        self._metering = metering
        self._broker = broker_address(url)
        self._prefix = prefix
        self._filter = topic_filter or readings_filter(prefix)
        self._initial_backoff_s = initial_backoff_s
        self._max_backoff_s = max_backoff_s
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="wattx-mqtt-ingest")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = self._initial_backoff_s
        while True:
            try:
                await self._serve()
            except aiomqtt.MqttError as exc:
                self.subscribed.clear()
                _log.warning("MQTT connection lost (%s); retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
            else:
                backoff = self._initial_backoff_s

    async def _serve(self) -> None:
        async with aiomqtt.Client(
            self._broker.host,
            self._broker.port,
            username=self._broker.username,
            password=self._broker.password,
            socket_options=[NO_DELAY],
        ) as client:
            await client.subscribe(self._filter, qos=QOS_AT_LEAST_ONCE)
            self.subscribed.set()
            _log.info("subscribed to %s", self._filter)
            # Meters side by side (their batches share group commits), each meter's in the
            # order they came.
            turns = KeyedTurns(MAX_IN_FLIGHT)
            try:
                async for message in client.messages:
                    parts = _topic_parts(message.topic.value, self._prefix)
                    if parts is None:
                        continue
                    zone, meter_id = parts
                    await turns.start(
                        meter_id, partial(self._handle, client, zone, meter_id, message.payload)
                    )
            finally:
                await turns.cancel()

    async def _handle(self, client: aiomqtt.Client, zone: str, meter_id: str, payload: Any) -> None:
        ack = await self._ingest(meter_id, payload)
        await client.publish(
            ack_topic(zone, meter_id, self._prefix),
            json.dumps(ack, separators=(",", ":")),
            qos=QOS_AT_LEAST_ONCE,
        )

    async def _ingest(self, meter_id: str, payload: Any) -> dict[str, Any]:
        document = payload if isinstance(payload, bytes | str) else b""
        try:
            result = await self._metering.ingest(document, via="mqtt", expected_meter_id=meter_id)
        except DomainError as exc:
            return {
                "ok": False,
                "code": exc.code,
                "status": exc.http_status,
                "title": exc.title,
                "detail": exc.detail,
            }
        return {
            "ok": True,
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "quarantined": result.quarantined,
            "last_seq": result.last_seq,
        }
