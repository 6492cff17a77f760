"""The virtual battery keeps its state of charge (and its locks and recent acks)
across a restart: a state file under ``--data-dir``, written atomically."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from wattx.virtual_devices.model import BatterySpec, VirtualBattery
from wattx.virtual_devices.mqtt import load_battery, write_atomically

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
SPEC = BatterySpec(capacity_wh=10_000, rated_power_w=5000, reserve_wh=1000)


def _cmd(kind: str, payload: dict[str, Any], *, at: datetime = T0) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex,
        "type": kind,
        "payload": payload,
        "issued_at": at.isoformat(),
        "expires_at": (at + timedelta(hours=1)).isoformat(),
    }


def test_a_restored_battery_keeps_its_charge_locks_and_acks_but_not_its_setpoint(
    tmp_path: Path,
) -> None:
    battery = VirtualBattery.new(SPEC, soc_wh=5000, at=T0)
    lock = _cmd("lock", {"qty_wh": 1200, "trade_id": "t-1"})
    first_lock = battery.handle(lock, T0)
    battery.handle(_cmd("transfer.start", {"power_w": -2000}), T0)
    battery.advance(T0 + timedelta(minutes=45))  # 1.5 kWh in: 6500 Wh
    path = tmp_path / "battery.json"
    write_atomically(path, battery.snapshot())
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert not path.with_name("battery.json.tmp").exists()

    later = T0 + timedelta(hours=3)
    again, restored = load_battery(SPEC, path, soc_wh=100, at=later)
    assert restored
    assert again.soc_mwh == 6_500_000
    assert again.locks == {"t-1": 1200}
    assert again.applied == battery.applied == 2
    # A command resent after the restart is still a duplicate: the first ack, no effect.
    assert again.handle(lock, later) == first_lock
    assert again.locked_wh == 1200
    # It comes back under its local policy, and no energy flowed while it was down.
    assert again.state(later)["mode"] == "local"
    assert again.advance(later + timedelta(hours=1)) == (0, 0)


def test_no_file_means_a_new_battery_and_a_bad_file_is_refused(tmp_path: Path) -> None:
    fresh, restored = load_battery(SPEC, tmp_path / "none.json", soc_wh=4000, at=T0)
    assert (fresh.soc_wh, restored) == (4000, False)
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1, "soc_mwh": -5}')
    with pytest.raises(ValueError, match="soc_mwh"):
        load_battery(SPEC, bad, soc_wh=4000, at=T0)
    bad.write_text("not json")
    with pytest.raises(ValueError, match="does not hold a battery state"):
        load_battery(SPEC, bad, soc_wh=4000, at=T0)
    # A capacity lowered since: the charge is cut to it.
    big = VirtualBattery.new(SPEC, soc_wh=9000, at=T0)
    write_atomically(bad, big.snapshot())
    small = BatterySpec(capacity_wh=8000, rated_power_w=5000, reserve_wh=1000)
    cut, _ = load_battery(small, bad, soc_wh=0, at=T0)
    assert cut.soc_wh == 8000


async def _telemetry(
    client: aiomqtt.Client, topic: str, *, after: datetime | None = None, within_s: float = 30.0
) -> dict[str, Any]:
    """The next telemetry on ``topic`` (published after ``after``, if given)."""
    async with asyncio.timeout(within_s):
        async for message in client.messages:
            if message.topic.value == topic:
                doc: dict[str, Any] = json.loads(message.payload)
                if after is None or datetime.fromisoformat(doc["at"]) > after:
                    return doc
    raise AssertionError("no telemetry")


async def _simulate(prefix: str, data_dir: Path, log: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wattx.cli.main", "device", "simulate",
        "--device-id", "bat-1", "--zone", "main", "--mqtt-prefix", prefix,
        "--soc-wh", "5000", "--telemetry-s", "0.2", "--data-dir", str(data_dir),
        stdout=log.open("ab"), stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


@pytest.fixture
async def mqtt() -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client("127.0.0.1", 1883) as client:
        yield client


async def test_wattx_device_simulate_keeps_its_charge_across_a_kill_9(
    tmp_path: Path, mqtt: aiomqtt.Client
) -> None:
    prefix = f"wattx-test-{uuid.uuid4().hex[:8]}"
    dev = f"{prefix}/main/dev/bat-1"
    await mqtt.subscribe(f"{dev}/#", qos=1)
    data_dir = tmp_path / "device"
    log = tmp_path / "device.log"
    proc = await _simulate(prefix, data_dir, log)
    try:
        first = await _telemetry(mqtt, f"{dev}/telemetry")
        assert first["soc_wh"] == 5000
        charge = _cmd("transfer.start", {"power_w": -5000}, at=datetime.now(UTC))
        await mqtt.publish(f"{dev}/cmd", json.dumps(charge), qos=1)
        soc = first["soc_wh"]
        while soc < 5003:  # 5 kW: about 1.4 Wh a second
            soc = (await _telemetry(mqtt, f"{dev}/telemetry"))["soc_wh"]
        await asyncio.sleep(1.5)  # a control tick writes the charge it reached
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        killed_at = datetime.now(UTC)
        await asyncio.sleep(1.1)  # its telemetry is stamped to the second
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    kept = json.loads((data_dir / "battery.json").read_text())
    assert kept["soc_mwh"] > 5_003_000

    proc = await _simulate(prefix, data_dir, log)
    try:
        back = await _telemetry(mqtt, f"{dev}/telemetry", after=killed_at)
        # Where it stood at the kill (to the last tick), not --soc-wh's 5000; and idle.
        assert back["soc_wh"] == kept["soc_mwh"] // 1000
        assert back["power_w"] == 0
        # The charge command resent: a duplicate, answered with its first ack.
        await mqtt.publish(f"{dev}/cmd", json.dumps(charge), qos=1)
        async with asyncio.timeout(30):
            async for message in mqtt.messages:
                if message.topic.value == f"{dev}/ack":
                    ack = json.loads(message.payload)
                    break
        assert ack == {"id": charge["id"], "status": "applied"}
        assert (await _telemetry(mqtt, f"{dev}/telemetry"))["power_w"] == 0
    finally:
        proc.terminate()
        await proc.wait()
    assert "kept from" in log.read_text()
