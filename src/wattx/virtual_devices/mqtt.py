"""A virtual battery and its meter on a site's MQTT broker (``docs/device-protocol.md``).

The battery listens on ``{prefix}/{zone}/dev/{device_id}/cmd``, acks on ``…/ack``,
publishes its measurements on ``…/telemetry`` every ``telemetry_s`` and its state
on ``…/state`` whenever a command changes it. The meter (optional) measures the
battery's flow and publishes one batch of readings signed with its key on
``{prefix}/{zone}/meters/{meter_id}/readings`` every ``reading_s`` ×
``readings_per_batch``; its sequence number and registers are kept in a state
file, so a restarted meter goes on where it stopped (the service refuses a meter
going back); the battery's charge, locks and recent acks are kept in its own
(:meth:`VirtualSite.save_battery`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt

from wattx.metering import reading_batch_to_json
from wattx.metering.readings import Reading
from wattx.metering.signing import MeterSigner
from wattx.nodes.daemon.bridge import broker
from wattx.virtual_devices.model import MWH_PER_WH, BatterySpec, MeterRegisters, VirtualBattery

_log = logging.getLogger(__name__)
QOS = 1


class BrokerUnreachableError(Exception):
    """The broker could not be reached at the start; the message says where."""


@dataclass(frozen=True, slots=True)
class SiteConfig:
    mqtt_url: str
    prefix: str
    zone: str
    device_id: str
    meter_id: str | None = None
    telemetry_s: float = 5.0
    reading_s: float = 60.0
    readings_per_batch: int = 1
    tick_s: float = 1.0
    state_path: Path | None = None
    battery_state_path: Path | None = None


@dataclass(slots=True)
class MeterState:
    next_seq: int = 1
    import_mwh: int = 0
    export_mwh: int = 0

    @classmethod
    def load(cls, path: Path | None) -> MeterState:
        if path is None or not path.exists():
            return cls()
        doc = json.loads(path.read_text())
        return cls(int(doc["next_seq"]), int(doc["import_mwh"]), int(doc["export_mwh"]))

    def save(self, path: Path | None) -> None:
        if path is None:
            return
        write_atomically(
            path,
            {
                "next_seq": self.next_seq,
                "import_mwh": self.import_mwh,
                "export_mwh": self.export_mwh,
            },
        )


def write_atomically(path: Path, doc: dict[str, Any]) -> None:
    """``doc`` as JSON at ``path``, whole or not at all: written to a file beside it,
    synced, then renamed over it (a kill at any instant leaves the old or the new)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(json.dumps(doc, separators=(",", ":")))
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def load_battery(
    spec: BatterySpec, path: Path | None, *, soc_wh: int, at: datetime
) -> tuple[VirtualBattery, bool]:
    """The battery kept at ``path`` by an earlier run (its charge, locks and recent acks),
    or a new one at ``soc_wh``; and whether it was restored. :class:`ValueError` when the
    file is there but does not hold a battery's state."""
    if path is None or not path.exists():
        return VirtualBattery.new(spec, soc_wh=soc_wh, at=at), False
    try:
        doc = json.loads(path.read_text())
    except ValueError as exc:
        raise ValueError(f"{path} does not hold a battery state: {exc}") from exc
    try:
        return VirtualBattery.restore(spec, doc, at=at), True
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


class VirtualSite:
    def __init__(
        self,
        config: SiteConfig,
        battery: VirtualBattery,
        *,
        meter_seed: bytes | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self.battery = battery
        self._now: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self._broker = broker(config.mqtt_url)
        base = f"{config.prefix}/{config.zone}"
        self._dev = f"{base}/dev/{config.device_id}"
        self._meter_topic = f"{base}/meters/{config.meter_id}" if config.meter_id else None
        self.registers = MeterRegisters()
        self._meter_state = MeterState.load(config.state_path)
        self.signer: MeterSigner | None = None
        if config.meter_id is not None:
            if meter_seed is None:
                raise ValueError("a meter needs its key")
            self.registers = MeterRegisters(
                self._meter_state.import_mwh, self._meter_state.export_mwh
            )
            self.signer = MeterSigner(
                config.meter_id,
                meter_seed,
                import_wh=self.registers.import_wh,
                export_wh=self.registers.export_wh,
                next_seq=self._meter_state.next_seq,
            )
        self._saved_soc_mwh: int | None = None
        self._client: aiomqtt.Client | None = None
        self._pending: list[Reading] = []
        self.connected = asyncio.Event()
        self.batches_sent = 0
        self.batches_buffered = 0
        self.acks_sent = 0

    async def run(self) -> None:
        """Run until cancelled. The broker must be reachable at the start
        (:class:`BrokerUnreachableError`); a broker lost later is dialled again."""
        host, port, username, password = self._broker
        first = True
        backoff = 0.5
        ticker = asyncio.create_task(self._ticks())
        try:
            while True:
                try:
                    async with aiomqtt.Client(
                        host, port, username=username, password=password
                    ) as client:
                        await client.subscribe(f"{self._dev}/cmd", qos=QOS)
                        if self._meter_topic is not None:
                            await client.subscribe(f"{self._meter_topic}/ack", qos=QOS)
                        self._client = client
                        self.connected.set()
                        first = False
                        backoff = 0.5
                        await self._publish(f"{self._dev}/state", self._state())
                        async for message in client.messages:
                            await self._on_message(message.topic.value, message.payload)
                except aiomqtt.MqttError as exc:
                    if first:
                        raise BrokerUnreachableError(
                            f"cannot reach the MQTT broker at {self.config.mqtt_url}: {exc}"
                        ) from exc
                    _log.warning("MQTT broker lost (%s); retrying in %.1f s", exc, backoff)
                finally:
                    self._client = None
                    self.connected.clear()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
            self._meter_flow()
            self.save_battery()

    def save_battery(self) -> None:
        """The battery's state, to its file (if it has one): every control tick in which
        its charge changed, after every command, and when the site stops."""
        path = self.config.battery_state_path
        if path is None:
            return
        write_atomically(path, self.battery.snapshot())
        self._saved_soc_mwh = self.battery.soc_mwh

    async def _on_message(self, topic: str, payload: Any) -> None:
        try:
            doc = json.loads(payload)
        except (ValueError, TypeError):
            doc = None
        if topic == f"{self._dev}/cmd":
            before = self.battery.state(self._now())
            ack = self.battery.handle(doc, self._now())
            self._meter_flow()
            # On disk before the ack leaves: a restarted battery still knows the command.
            self.save_battery()
            await self._publish(f"{self._dev}/ack", ack)
            self.acks_sent += 1
            _log.info(
                "%s: %s %s → %s",
                self.config.device_id,
                doc.get("type") if isinstance(doc, dict) else "?",
                doc.get("id") if isinstance(doc, dict) else "?",
                ack["status"],
            )
            if self.battery.state(self._now()) != before:
                await self._publish(f"{self._dev}/state", self._state())
        elif isinstance(doc, dict) and doc.get("ok") is True:
            self.batches_buffered += 1

    async def _ticks(self) -> None:
        now = self._now()
        next_telemetry = now
        next_reading = now + timedelta(seconds=self.config.reading_s)
        while True:
            now = self._now()
            self._meter_flow()
            if self.battery.soc_mwh != self._saved_soc_mwh:
                self.save_battery()
            if now >= next_telemetry and self._client is not None:
                await self._publish(f"{self._dev}/telemetry", self.telemetry())
                _log.info(
                    "%s: soc %d Wh (%.1f %%), power %d W",
                    self.config.device_id,
                    self.battery.soc_wh,
                    self.battery.soc_permille / 10,
                    self.battery.power_w(now),
                )
                next_telemetry = now + timedelta(seconds=self.config.telemetry_s)
            if self.signer is not None and now >= next_reading:
                await self._read(now)
                next_reading = now + timedelta(seconds=self.config.reading_s)
            await asyncio.sleep(self.config.tick_s)

    def _meter_flow(self) -> None:
        delivered, drawn = self.battery.advance(self._now())
        self.registers.add(exported_mwh=delivered, imported_mwh=drawn)

    async def _read(self, now: datetime) -> None:
        """Take a reading; publish a signed batch when enough are taken."""
        signer = self.signer
        assert signer is not None
        reading = signer.record(
            now.replace(microsecond=0),
            imported_wh=self.registers.import_wh - signer.import_wh,
            exported_wh=self.registers.export_wh - signer.export_wh,
            power_w=-self.battery.power_w(now),  # the meter's sign: positive imports
            soc_permille=self.battery.soc_permille,
        )
        self._pending.append(reading)
        # The sequence is spent once a reading exists: on disk before it can be sent.
        self._meter_state = MeterState(
            signer.next_seq,
            signer.import_wh * MWH_PER_WH,
            signer.export_wh * MWH_PER_WH,
        )
        self._meter_state.save(self.config.state_path)
        if len(self._pending) >= self.config.readings_per_batch and self._client is not None:
            batch = reading_batch_to_json(signer.sign(self._pending))
            assert self._meter_topic is not None
            await self._publish(f"{self._meter_topic}/readings", batch)
            self._pending = []
            self.batches_sent += 1

    def telemetry(self) -> dict[str, Any]:
        now = self._now()
        doc: dict[str, Any] = {
            "at": now.isoformat(timespec="seconds"),
            "soc_wh": self.battery.soc_wh,
            "soc_permille": self.battery.soc_permille,
            "power_w": self.battery.power_w(now),
            "setpoint_w": self.battery.setpoint_w(now),
            "capacity_wh": self.battery.spec.capacity_wh,
            "reserve_wh": self.battery.spec.reserve_wh,
            "rated_power_w": self.battery.spec.rated_power_w,
        }
        if self.signer is not None:
            doc["import_wh"] = self.registers.import_wh
            doc["export_wh"] = self.registers.export_wh
        return doc

    def _state(self) -> dict[str, Any]:
        return self.battery.state(self._now())

    async def _publish(self, topic: str, doc: dict[str, Any]) -> None:
        client = self._client
        if client is None:
            return
        with contextlib.suppress(aiomqtt.MqttError):
            await client.publish(topic, json.dumps(doc, separators=(",", ":")), qos=QOS)
