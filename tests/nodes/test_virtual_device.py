"""The virtual battery and meter: the model's physics and command rules, the CLI's
one-line errors, and ``wattx device simulate`` bridged by ``wattx node run`` to a
real service over a real broker."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ingest.conftest import RATED_CAPACITY_W
from service.helpers import FLAT_ZONE
from wattx.bus.events import EventType
from wattx.cli.main import app
from wattx.metering.signing import MeterSigner
from wattx.services.principal import Role
from wattx.virtual_devices.model import BatterySpec, MeterRegisters, VirtualBattery

from .conftest import Service, enrol
from .helpers import command, command_state, eventually, sqlite_only

T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
SPEC = BatterySpec(capacity_wh=10_000, rated_power_w=5000, reserve_wh=1000)


def _cmd(
    kind: str, payload: dict[str, Any], *, at: datetime = T0, ttl_h: int = 1
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex,
        "type": kind,
        "payload": payload,
        "issued_at": at.isoformat(),
        "expires_at": (at + timedelta(hours=ttl_h)).isoformat(),
    }


def test_the_battery_follows_a_setpoint_within_its_rated_power() -> None:
    battery = VirtualBattery.new(SPEC, soc_wh=5000, at=T0)
    ack = battery.handle(_cmd("transfer.start", {"power_w": -8000}), T0)
    assert ack["status"] == "applied"
    assert "clipped to the rated power: -5000 W" in ack["detail"]
    delivered, drawn = battery.advance(T0 + timedelta(minutes=30))
    assert (delivered, drawn) == (0, 2_500_000)  # 5 kW for half an hour, in mWh
    assert battery.soc_wh == 7500
    assert battery.soc_permille == 750


def test_the_battery_stops_at_its_reserve_and_at_its_capacity() -> None:
    battery = VirtualBattery.new(SPEC, soc_wh=2000, at=T0)
    battery.handle(_cmd("transfer.start", {"power_w": 4000}), T0)
    delivered, _ = battery.advance(T0 + timedelta(hours=1))
    assert delivered == 1_000_000  # down to the reserve, not below
    assert battery.soc_wh == SPEC.reserve_wh
    assert battery.power_w(T0 + timedelta(hours=1)) == 0
    battery.handle(_cmd("transfer.start", {"power_w": -5000}, at=T0 + timedelta(hours=1)), T0)
    _, drawn = battery.advance(T0 + timedelta(hours=3))
    assert drawn == 9_000_000
    assert battery.soc_wh == SPEC.capacity_wh


def test_a_slot_setpoint_ends_with_its_slot_and_release_returns_to_local_policy() -> None:
    battery = VirtualBattery.new(SPEC, soc_wh=5000, at=T0)
    until = T0 + timedelta(minutes=15)
    ack = battery.handle(
        _cmd("setpoint", {"setpoint_w": 2000, "slot": 0, "version": 1, "until": until.isoformat()}),
        T0,
    )
    assert ack == {"id": ack["id"], "status": "applied"}
    delivered, _ = battery.advance(T0 + timedelta(hours=1))
    assert delivered == 500_000  # 2 kW for the slot's 15 minutes only
    assert battery.state(T0 + timedelta(hours=1))["mode"] == "local"
    battery.handle(_cmd("transfer.start", {"power_w": 1000}), T0 + timedelta(hours=1))
    battery.handle(_cmd("release", {"reason": "link_lost"}), T0 + timedelta(hours=1))
    assert battery.advance(T0 + timedelta(hours=2)) == (0, 0)


def test_a_trade_schedule_runs_from_its_start_for_its_seconds() -> None:
    battery = VirtualBattery.new(SPEC, soc_wh=5000, at=T0)
    start = T0 + timedelta(minutes=10)
    payload = {"power_w": 3000, "starts_at": start.isoformat(), "seconds": 600}
    assert battery.handle(_cmd("schedule", payload), T0)["status"] == "applied"
    delivered, _ = battery.advance(T0 + timedelta(hours=1))
    assert delivered == 500_000  # 3 kW for 10 minutes


def test_duplicates_expired_and_unknown_commands() -> None:
    battery = VirtualBattery.new(SPEC, soc_wh=5000, at=T0)
    lock = _cmd("lock", {"qty_wh": 3000, "trade_id": "t-1"})
    first = battery.handle(lock, T0)
    assert first["status"] == "applied"
    assert battery.handle(lock, T0 + timedelta(seconds=5)) == first
    assert battery.locked_wh == 3000
    assert battery.applied == 1
    more = battery.handle(_cmd("lock", {"qty_wh": 1500, "trade_id": "t-2"}), T0)
    assert more == {
        "id": more["id"],
        "status": "rejected",
        "detail": "only 1000 Wh above the reserve",
    }
    battery.handle(_cmd("unlock", {"trade_id": "t-1"}), T0)
    assert battery.locked_wh == 0
    old = _cmd("transfer.start", {"power_w": 1}, at=T0 - timedelta(hours=2))
    assert battery.handle(old, T0)["detail"] == "expired"
    assert battery.handle(_cmd("dance", {}), T0)["status"] == "rejected"
    assert battery.handle("nonsense", T0)["status"] == "rejected"


def test_meter_registers_count_whole_wh_without_losing_the_rest() -> None:
    registers = MeterRegisters()
    for _ in range(3):
        registers.add(exported_mwh=400, imported_mwh=0)
    assert (registers.export_wh, registers.export_mwh) == (1, 1200)


runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device-id", "a/b"], "--device-id is 1 to 64 characters"),
        (["--device-id", "b", "--reserve-wh", "20000"], "--reserve-wh lies from 0"),
        (["--device-id", "b", "--soc-wh", "-1"], "--soc-wh lies from 0"),
        (["--device-id", "b", "--mqtt-url", "http://x"], "an MQTT URL looks like"),
        (["--device-id", "b", "--meter-id", "m"], "--meter-id and --meter-key go together"),
        (
            ["--device-id", "b", "--meter-id", "m", "--meter-key", "/nonexistent/key"],
            "cannot read /nonexistent/key",
        ),
        (["--device-id", "b", "--mqtt-url", "mqtt://127.0.0.1:1"], "cannot reach the MQTT broker"),
        (["--device-id", "b", "--mqtt-prefix", "a/b"], "--mqtt-prefix is one topic level"),
    ],
)
def test_simulate_reports_mistakes_in_one_line(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["device", "simulate", *args])
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("wattx: error:")]
    assert len(errors) == 1, result.output
    assert message in errors[0]
    assert "Traceback" not in result.output


async def _register_meter(service: Service, seed: bytes) -> tuple[str, Any]:
    api = service.api
    op = await api.operator()
    zone = await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)
    assert zone.status_code in (201, 409), zone.text
    owner = await api.signup(Role.PROSUMER)
    response = await api.http.post(
        "/api/v1/meters",
        json={
            "serial": f"SN-{seed[:6].hex()}",
            "zone_id": "main",
            "rated_capacity_w": RATED_CAPACITY_W,
            "public_key": MeterSigner("pending", seed).public_key.hex(),
        },
        headers=owner.headers,
    )
    assert response.status_code == 201, response.text
    meter_id: str = response.json()["id"]
    activated = await api.http.post(f"/api/v1/meters/{meter_id}/activate", headers=op.headers)
    assert activated.status_code == 200, activated.text
    return meter_id, owner


@asynccontextmanager
async def _process(*args: str, log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wattx.cli.main",
            *args,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            yield proc
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), timeout=10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


@pytest.fixture
async def telemetry_events(service: Service) -> AsyncIterator[list[dict[str, Any]]]:
    got: list[dict[str, Any]] = []

    async def watch() -> None:
        async for event in service.state.bus.subscribe():
            if event.type is EventType.NODE_EVENT and event.data["name"] == "device.telemetry":
                got.append(event.data["data"]["data"])

    task = asyncio.create_task(watch())
    await asyncio.sleep(0)
    yield got
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@sqlite_only
async def test_a_simulated_battery_and_meter_behind_wattx_node_run(
    service: Service, tmp_path: Path, telemetry_events: list[dict[str, Any]]
) -> None:
    prefix = f"wattx-test-{uuid.uuid4().hex[:8]}"
    seed = os.urandom(32)
    key = tmp_path / "meter.key"
    key.write_text(seed.hex() + "\n")
    meter_id, meter_owner = await _register_meter(service, seed)
    node_dir = tmp_path / "node"
    node = await enrol(service.api, node_dir, server=service.url, mqtt_prefix=prefix, heartbeat_s=1)
    op = await service.api.operator()
    attached = await service.api.http.put(
        f"/api/v1/nodes/{node.node_id}/meters/{meter_id}", headers=op.headers
    )
    assert attached.status_code == 200, attached.text
    simulate = (
        "device", "simulate", "--device-id", "bat-1", "--zone", "main", "--mqtt-prefix", prefix,
        "--meter-id", meter_id, "--meter-key", str(key), "--meter-state", str(tmp_path / "m.json"),
        "--telemetry-s", "0.5", "--reading-s", "1", "--soc-wh", "5000",
    )  # fmt: skip
    async with (
        _process("node", "run", "--data-dir", str(node_dir), log=tmp_path / "node.log"),
        _process(*simulate, log=tmp_path / "device.log"),
    ):

        async def heard() -> bool:
            return len(telemetry_events) >= 1

        # Both processes start first (imports, the link, the broker): on a machine other
        # work shares, that alone has taken over a minute.
        await eventually(heard, within_s=180)
        issued = await command(
            service,
            node.owner,
            node.node_id,
            type="device.command",
            payload={
                "zone": "main",
                "device_id": "bat-1",
                "type": "transfer.start",
                "payload": {"power_w": -5000},
            },
        )

        async def applied() -> bool:
            row = await command_state(service, node.owner, node.node_id, issued["id"])
            return bool(row["state"] == "applied")

        await eventually(applied, within_s=20)
        row = await command_state(service, node.owner, node.node_id, issued["id"])
        assert row["result"]["device_ack"] == {"id": issued["id"], "status": "applied"}
        charged_from = len(telemetry_events)

        async def charging() -> bool:
            later = telemetry_events[charged_from:]
            return len(later) >= 3 and later[-1]["soc_wh"] > later[0]["soc_wh"]

        await eventually(charging, within_s=20)
        assert all(t["power_w"] == -5000 for t in telemetry_events[charged_from + 1 :])

        async def readings() -> list[dict[str, Any]]:
            response = await service.api.http.get(
                f"/api/v1/meters/{meter_id}/readings", headers=meter_owner.headers
            )
            assert response.status_code == 200, response.text
            items: list[dict[str, Any]] = response.json()["items"]
            return items

        async def metered() -> bool:
            items = await readings()
            return len(items) >= 3 and max(r["import_wh"] for r in items) > 0

        await eventually(metered, within_s=30)
    items = await readings()
    assert {r["via"] for r in items} == {"node"}
    seqs = sorted(r["seq"] for r in items)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    imports = [r["import_wh"] for r in sorted(items, key=lambda r: r["seq"])]
    assert imports == sorted(imports)


def test_the_virtual_battery_answers_the_worked_example_as_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "device-protocol.md").read_text()

    def example(name: str) -> dict[str, Any]:
        block = doc.split(f"<!-- example:{name} -->\n```json\n", 1)[1].split("\n```", 1)[0]
        parsed: dict[str, Any] = json.loads(block)
        return parsed

    envelope = example("command")
    at = datetime.fromisoformat(envelope["issued_at"])
    battery = VirtualBattery.new(SPEC, soc_wh=5000, at=at)
    assert battery.handle(envelope, at) == example("ack")
    assert battery.handle(envelope, at + timedelta(seconds=5)) == example("ack")
    assert battery.locked_wh == envelope["payload"]["qty_wh"]
    setpoint = example("setpoint")
    issued = datetime.fromisoformat(setpoint["issued_at"])
    assert battery.handle(setpoint, issued)["status"] == "applied"
    assert battery.setpoint_w(issued) == setpoint["payload"]["setpoint_w"]
    release = example("release")
    assert battery.handle(release, datetime.fromisoformat(release["issued_at"]))["status"] == (
        "applied"
    )
