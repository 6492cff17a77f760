"""Meter readings accepted per second, end to end over HTTP, against a real `wattx up`.

Starts the service as a subprocess (SQLite in a temporary data dir, and/or a
fresh PostgreSQL database on 127.0.0.1:5432; see ``bench/api.py``), registers
and activates ``--meters`` meters with their own Ed25519 keys, then for each
batch size (1, 10, 100 readings) lets one client per meter post its signed
batches to ``POST /api/v1/meters/{id}/readings`` back to back (closed loop).
Every batch is signed before the clock starts, so the figures measure the
service: parsing, signature check, validation, storage and per-epoch energy.
After each batch size the pure metering core (``bench/metering.py``'s
``ingest`` stage: parse, verify, validate, digest, no I/O) is timed in this
process on the same machine, and ``ratio`` is the service's readings per
second over the core's: the share of the core's speed the service keeps,
which a machine loaded by other work does not hide.

    .venv/bin/python bench/ingest.py                 # both backends, table
    .venv/bin/python bench/ingest.py --backend postgres --requests 400 --json
    .venv/bin/python bench/ingest.py --backend postgres --batch-sizes 100 --profile prof
    .venv/bin/python bench/ingest.py --backend postgres --batch-sizes 100 --replicas 2

``--replicas N`` (PostgreSQL) starts N ``wattx up`` processes on one database
and spreads the meters over them: readings need no elected writer (a group's
transaction locks its meters' rows), so every replica stores what it is sent
(docs/operations.md, "Scaling out"); ``cpu us/rd`` is then all replicas' CPU.

``--transport mqtt`` sends the batches through the MQTT broker on 127.0.0.1:1883
(``--broker HOST:PORT``: another) instead: each meter its own connection, publishing on
``{prefix}/main/meters/{id}/readings`` and waiting for the acknowledgement on ``…/ack``
before its next batch (the service started with ``WATTX_MQTT_URL`` and a topic prefix
of this run alone); the latencies are from publish to acknowledgement.
``--meters-no-delay`` has the meters' connections set ``TCP_NODELAY``, as the service's
does (without it their small packets wait for Nagle's algorithm).

``--task-cpu FILE`` has the service count its CPU by asyncio task (``bench/task_cpu``)
and prints, after each batch size, each busiest task's share and its CPU per reading.

``--profile PREFIX`` records the service (the first replica) with ``py-spy``
while each batch size runs and writes ``PREFIX-<backend>-<size>.txt`` (collapsed
stacks, for a flame graph or ``sort``) and prints the functions with the most own
samples.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import httpx

sys.path.insert(0, str(Path(__file__).parent))
from api import PASSWORD, RawHttpConnection, Service, live_replicas, run_and_print
from metering import measure as measure_core
from profiling import start_profiler, stop_profiler
from task_cpu import read_task_cpu, task_cpu_env, task_cpu_table
from wattx.metering import MeterSigner, encode_reading_batch

BATCH_SIZES = (1, 10, 100)


@dataclass
class Result:
    backend: str
    replicas: int
    batch_size: int
    meters: int
    requests: int
    readings: int
    errors: int
    seconds: float
    readings_per_second: float
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    server_cpu_us_per_reading: float  # the service's CPU time (all threads) per reading
    core_readings_per_second: float = 0.0  # the pure metering core, same batch size, same run
    ratio: float = 0.0  # readings_per_second / core_readings_per_second
    transport: str = "http"


async def _register_meters(http: httpx.AsyncClient, count: int) -> list[MeterSigner]:
    """``count`` meters, registered by one prosumer and activated by the operator."""
    login = await http.post(
        "/api/v1/auth/login", json={"email": "op@bench.test", "password": PASSWORD}
    )
    op = {"Authorization": f"Bearer {login.json()['access_token']}"}
    email = f"prosumer-{uuid.uuid4().hex[:6]}@bench.test"
    signup = await http.post(
        "/api/v1/auth/signup",
        json={"email": email, "password": PASSWORD, "display_name": email, "role": "prosumer"},
    )
    user_id = signup.json()["id"]
    await http.patch(f"/api/v1/admin/users/{user_id}", json={"status": "admitted"}, headers=op)
    token = await http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    owner = {"Authorization": f"Bearer {token.json()['access_token']}"}
    signers = []
    for _ in range(count):
        seed = os.urandom(32)
        public_key = MeterSigner("pending", seed).public_key.hex()
        meter = await http.post(
            "/api/v1/meters",
            json={
                "serial": f"bench-{seed[:8].hex()}",
                "zone_id": "main",
                "rated_capacity_w": 10_000,
                "public_key": public_key,
            },
            headers=owner,
        )
        meter.raise_for_status()
        meter_id = meter.json()["id"]
        (await http.post(f"/api/v1/meters/{meter_id}/activate", headers=op)).raise_for_status()
        signers.append(MeterSigner(meter_id, seed))
    return signers


def _signed_bodies(
    signer: MeterSigner, clock: list[datetime], batches: int, size: int
) -> list[bytes]:
    """``batches`` consecutive batches of ``size`` readings, one second apart, 1 Wh each."""
    bodies = []
    for _ in range(batches):
        readings = []
        for _ in range(size):
            clock[0] += timedelta(seconds=1)
            readings.append(signer.record(clock[0], exported_wh=1, voltage_mv=230_000))
        bodies.append(encode_reading_batch(signer.sign(readings)))
    return bodies


@dataclass
class _Clients:
    """What the meters' clients of one run share: the start line and what they measure."""

    start_line: asyncio.Barrier
    latencies: list[float] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)

    def answered(self, started: float, refused_with: int | None) -> None:
        """A batch sent at ``started`` has its answer; ``refused_with`` a status if refused."""
        self.latencies.append(time.perf_counter() - started)
        if refused_with is not None:
            self.errors.append(refused_with)


async def _client(url: str, meter_id: str, bodies: list[bytes], clients: _Clients) -> None:
    connection = RawHttpConnection(url, {})
    await connection.open()
    try:
        await connection.request("GET", "/healthz")
        await clients.start_line.wait()
        for body in bodies:
            started = time.perf_counter()
            status, answer = await connection.request(
                "POST", f"/api/v1/meters/{meter_id}/readings", body
            )
            stored = status == 200 and json.loads(answer)["accepted"] > 0
            clients.answered(started, None if stored else status)
    finally:
        connection.close()


MQTT_BROKER = "127.0.0.1:1883"


@dataclass(frozen=True)
class _Mqtt:
    """How a run's meters and service reach the broker."""

    prefix: str  # the run's own topic prefix
    no_delay: bool  # the meters' connections set TCP_NODELAY
    host: str
    port: int


def _broker(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return host, int(port)


async def _mqtt_client(mqtt: _Mqtt, meter_id: str, bodies: list[bytes], clients: _Clients) -> None:
    topic = f"{mqtt.prefix}/main/meters/{meter_id}"
    options = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)] if mqtt.no_delay else []
    async with aiomqtt.Client(mqtt.host, mqtt.port, socket_options=options) as device:
        await device.subscribe(f"{topic}/ack", qos=1)
        acks = device.messages.__aiter__()
        await clients.start_line.wait()
        for body in bodies:
            started = time.perf_counter()
            await device.publish(f"{topic}/readings", body, qos=1)
            async with asyncio.timeout(60):
                ack = json.loads((await anext(acks)).payload)  # type: ignore[arg-type]
            stored = ack["ok"] and ack["accepted"] > 0
            clients.answered(started, None if stored else ack.get("status", 0))


async def _run_batch_size(
    backend: str,
    services: list[Service],
    signers: list[MeterSigner],
    clocks: list[list[datetime]],
    size: int,
    requests: int,
    profile: str | None = None,
    mqtt: _Mqtt | None = None,
    task_cpu: Path | None = None,
) -> Result:
    per_meter = max(1, requests // len(signers))
    bodies = [
        _signed_bodies(signer, clock, per_meter, size)
        for signer, clock in zip(signers, clocks, strict=True)
    ]
    shared = _Clients(asyncio.Barrier(len(signers) + 1))
    clients = asyncio.gather(
        *(
            _client(services[i % len(services)].url, signer.meter_id, meter_bodies, shared)
            if mqtt is None
            else _mqtt_client(mqtt, signer.meter_id, meter_bodies, shared)
            for i, (signer, meter_bodies) in enumerate(zip(signers, bodies, strict=True))
        )
    )
    via = "http" if mqtt is None else "mqtt"
    print(f"[{backend}] batches of {size} over {via}", file=sys.stderr, flush=True)
    profiler = start_profiler(services[0], f"{profile}-{backend}-{size}" if profile else None)
    await shared.start_line.wait()
    cpu_before = sum(service.cpu_seconds() for service in services)
    tasks_before = read_task_cpu(task_cpu) if task_cpu else None
    started = time.perf_counter()
    await clients
    elapsed = time.perf_counter() - started
    cpu_s = sum(service.cpu_seconds() for service in services) - cpu_before
    sent = per_meter * len(signers)
    if task_cpu and tasks_before is not None:
        await asyncio.sleep(0.5)  # the service keeps its totals every 0.2 s
        print(task_cpu_table(tasks_before, read_task_cpu(task_cpu), sent * size), file=sys.stderr)
    if profiler is not None:
        stop_profiler(*profiler)
    accepted_readings = (sent - len(shared.errors)) * size
    ordered = sorted(shared.latencies)
    core = next(r for r in measure_core(size, 20_000) if r.stage == "ingest")
    per_second = accepted_readings / elapsed
    return Result(
        backend=backend,
        replicas=len(services),
        batch_size=size,
        meters=len(signers),
        requests=sent,
        readings=sent * size,
        errors=len(shared.errors),
        seconds=round(elapsed, 2),
        readings_per_second=round(accepted_readings / elapsed, 1),
        requests_per_second=round(sent / elapsed, 1),
        p50_ms=round(statistics.median(ordered) * 1000, 2),
        p99_ms=round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000, 2),
        server_cpu_us_per_reading=round(cpu_s * 1e6 / max(1, sent * size), 1),
        core_readings_per_second=core.readings_per_s,
        ratio=round(per_second / core.readings_per_s, 3),
        transport=via,
    )


async def _bench_backend(backend: str, args: argparse.Namespace) -> list[Result]:
    host, port = args.broker
    mqtt = (
        _Mqtt(f"bench-{uuid.uuid4().hex[:8]}", args.meters_no_delay, host, port)
        if args.transport == "mqtt"
        else None
    )
    mqtt_env = (
        {"WATTX_MQTT_URL": f"mqtt://{host}:{port}", "WATTX_MQTT_TOPIC_PREFIX": mqtt.prefix}
        if mqtt is not None
        else {}
    )
    task_cpu = Path(args.task_cpu) if args.task_cpu else None
    extra_env = {**mqtt_env, **(task_cpu_env(task_cpu) if task_cpu else {})}
    async with live_replicas(backend, args.replicas, **extra_env) as services:
        async with httpx.AsyncClient(base_url=services[0].url, timeout=30) as http:
            signers = await _register_meters(http, args.meters)
        # Readings start 20 days back (inside the 30-day retention window), 1 s apart.
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)
        clocks = [[start] for _ in signers]
        return [
            await _run_batch_size(
                backend,
                services,
                signers,
                clocks,
                size,
                args.requests,
                args.profile,
                mqtt,
                task_cpu,
            )
            for size in args.batch_sizes
        ]


def _table(results: list[Result]) -> str:
    header = (
        f"{'backend':<9} {'via':<4} {'repl':>4} {'batch':>5} {'meters':>6} "
        f"{'requests':>8} {'readings':>8} "
        f"{'errors':>6} {'readings/s':>10} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'cpu us/rd':>9} {'core rd/s':>10} {'ratio':>6}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.backend:<9} {r.transport:<4} {r.replicas:>4} {r.batch_size:>5} {r.meters:>6} "
            f"{r.requests:>8} {r.readings:>8} "
            f"{r.errors:>6} {r.readings_per_second:>10.1f} {r.requests_per_second:>7.1f} "
            f"{r.p50_ms:>7.2f} {r.p99_ms:>7.2f} {r.server_cpu_us_per_reading:>9.1f} "
            f"{r.core_readings_per_second:>10.0f} {r.ratio:>6.3f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--meters", type=int, default=20, help="concurrent meters (clients)")
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="wattx up processes on one PostgreSQL database, the meters spread over them",
    )
    parser.add_argument(
        "--requests", type=int, default=600, help="batches posted per batch size, all meters"
    )
    parser.add_argument(
        "--batch-sizes",
        type=lambda text: [int(s) for s in text.split(",")],
        default=list(BATCH_SIZES),
        help="comma-separated readings per batch",
    )
    parser.add_argument(
        "--transport",
        choices=["http", "mqtt"],
        default="http",
        help="how the meters send: HTTP posts, or MQTT through the broker (--broker)",
    )
    parser.add_argument(
        "--broker",
        type=_broker,
        default=MQTT_BROKER,
        metavar="HOST:PORT",
        help=f"with --transport mqtt: the broker of the meters and the service ({MQTT_BROKER})",
    )
    parser.add_argument(
        "--meters-no-delay",
        action="store_true",
        help="with --transport mqtt: the meters' connections set TCP_NODELAY",
    )
    parser.add_argument(
        "--task-cpu",
        metavar="FILE",
        help="count the service's CPU by asyncio task (bench/task_cpu), kept in FILE; "
        "each batch size's shares go to stderr",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--profile", metavar="PREFIX", help="record the service with py-spy per batch size"
    )
    args = parser.parse_args()
    if args.replicas < 1 or (args.replicas > 1 and args.backend != "postgres"):
        parser.exit(2, "bench/ingest.py: --replicas above 1 needs --backend postgres\n")
    if args.task_cpu and args.replicas > 1:
        parser.exit(2, "bench/ingest.py: --task-cpu counts one service: use --replicas 1\n")
    run_and_print(_bench_backend, args, _table)


if __name__ == "__main__":
    main()
