"""The site's MQTT broker: meters' reading batches in, device commands out, acks and
telemetry back (``docs/device-protocol.md``).

Topics, under a prefix (``wattx`` unless configured)::

    {prefix}/{zone}/meters/{meter_id}/readings   meter → node   signed batch
    {prefix}/{zone}/meters/{meter_id}/ack        node → meter   {"ok": true, "buffered": seq}
    {prefix}/{zone}/dev/{device_id}/cmd          node → device  command envelope
    {prefix}/{zone}/dev/{device_id}/ack          device → node  {"id", "status", "detail"}
    {prefix}/{zone}/dev/{device_id}/telemetry    device → node  any JSON object
    {prefix}/{zone}/dev/{device_id}/state        device → node  any JSON object
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt

_log = logging.getLogger(__name__)
QOS = 1
RESEND_S = 5.0

BatchSink = Callable[[str, dict[str, Any]], int]
"""Persist a meter's batch; returns its buffer sequence number."""
EventSink = Callable[[str, dict[str, Any]], Awaitable[None]]


def broker(url: str) -> tuple[str, int, str | None, str | None]:
    """Host, port, user and password of ``mqtt://[user[:password]@]host[:port]``."""
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ValueError(f"an MQTT URL looks like mqtt://host:1883, not {url!r}")
    return (
        parts.hostname,
        parts.port or 1883,
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
    )


class DeviceBridge:
    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        on_batch: BatchSink,
        on_event: EventSink,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._broker = broker(url)
        self._now: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self._prefix = prefix
        self._on_batch = on_batch
        self._on_event = on_event
        self._client: aiomqtt.Client | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.connected = asyncio.Event()
        self.devices: dict[str, dict[str, Any]] = {}

    async def run(self) -> None:
        backoff = 0.5
        while True:
            try:
                host, port, username, password = self._broker
                async with aiomqtt.Client(
                    host, port, username=username, password=password
                ) as client:
                    for suffix in (
                        "meters/+/readings",
                        "dev/+/ack",
                        "dev/+/telemetry",
                        "dev/+/state",
                    ):
                        await client.subscribe(f"{self._prefix}/+/{suffix}", qos=QOS)
                    self._client = client
                    self.connected.set()
                    backoff = 0.5
                    async for message in client.messages:
                        await self._handle(client, message.topic.value, message.payload)
            except aiomqtt.MqttError as exc:
                _log.warning("local MQTT broker lost (%s); retrying in %.1f s", exc, backoff)
            finally:
                self._client = None
                self.connected.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def command(
        self, zone: str, device_id: str, envelope: dict[str, Any], *, expires_at: datetime
    ) -> dict[str, Any] | None:
        """Send a command to a device until it acks (by id) or the command expires."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[envelope["id"]] = future
        topic = f"{self._prefix}/{zone}/dev/{device_id}/cmd"
        try:
            while True:
                remaining = (expires_at - self._now()).total_seconds()
                if remaining <= 0:
                    return None
                client = self._client
                if client is not None:
                    with contextlib.suppress(aiomqtt.MqttError):
                        await client.publish(topic, json.dumps(envelope), qos=QOS)
                try:
                    async with asyncio.timeout(min(RESEND_S, remaining)):
                        return await asyncio.shield(future)
                except TimeoutError:
                    continue
        finally:
            self._pending.pop(envelope["id"], None)

    async def _handle(self, client: aiomqtt.Client, topic: str, payload: Any) -> None:
        parts = topic.split("/")
        if len(parts) != 5 or parts[0] != self._prefix:
            return
        _, zone, kind, ident, leaf = parts
        try:
            doc = json.loads(payload)
        except (ValueError, TypeError):
            doc = None
        if kind == "meters" and leaf == "readings":
            await self._reading(client, zone, ident, doc)
        elif kind == "dev" and isinstance(doc, dict):
            self.devices[ident] = {
                "zone": zone,
                "last_seen": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            if leaf == "ack":
                future = self._pending.get(str(doc.get("id")))
                if future is not None and not future.done():
                    future.set_result(doc)
            else:
                await self._on_event(
                    f"device.{leaf}", {"zone": zone, "device_id": ident, "data": doc}
                )

    async def _reading(self, client: aiomqtt.Client, zone: str, meter_id: str, doc: Any) -> None:
        ack_topic = f"{self._prefix}/{zone}/meters/{meter_id}/ack"
        if not isinstance(doc, dict) or doc.get("meter_id") != meter_id:
            answer: dict[str, Any] = {
                "ok": False,
                "code": "malformed_batch",
                "detail": "a batch is a JSON object of the meter named in the topic",
            }
        else:
            # Acknowledged to the meter only once it is on disk.
            answer = {"ok": True, "buffered": self._on_batch(meter_id, doc)}
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(ack_topic, json.dumps(answer), qos=QOS)
