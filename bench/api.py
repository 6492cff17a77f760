"""Order submissions per second and latency through HTTP against a real `wattx up`.

Starts the service as a subprocess (SQLite in a temporary data dir, and/or a
fresh PostgreSQL database on 127.0.0.1:5432), signs up and funds 50
participants, then lets 50 concurrent clients submit limit orders:

* ``max``: each client sends its next order as soon as the previous one is
  answered (closed loop): the throughput ceiling and its latency;
* ``paced``: clients together aim at ``--rate`` submissions per second (open
  loop per client, schedules spread evenly): latency at fixed loads, by
  default 100/s and the issue's 500/s target;
* ``batch``: ``--batch-clients`` clients (default 4) each send
  ``POST /api/v1/orders/batch`` with ``--batch`` orders (default 500) as soon as
  the previous batch is answered: orders per second through the batch route,
  and the latency of one batch request;
* ``--replicas 2`` (PostgreSQL): two ``wattx up`` replicas on the same
  database elect one market writer (``WATTX_MARKET_WRITER=elect``); the
  clients are spread over both, so half the orders reach the writer through
  the other replica (docs/operations.md, "Scaling out");
* ``ceiling``: the same clients send ``GET /healthz`` (a bare FastAPI route
  behind the same middleware, no database) closed loop: what the server and
  this machine can answer at all in this run. Every other mode's ``ratio`` is
  its orders per second over this figure, so a machine loaded by other work
  does not hide a change of the service's own cost.

Half the clients sell and half buy, with prices that cross now and then so
the figures include matching, trades and escrow transfers. Before the clock of
each mode starts, every client connects and sends one authenticated
``GET /api/v1/users/me``, so the figures leave out connecting and the first
read of each client's session.

    .venv/bin/python bench/api.py                 # both backends, table
    .venv/bin/python bench/api.py --backend sqlite --rates 100,300 --json
    .venv/bin/python bench/api.py --modes batch --batch 1000   # the batch route only
    .venv/bin/python bench/api.py --backend sqlite --modes ceiling,max,batch --json
    .venv/bin/python bench/api.py --backend postgres --replicas 2 --modes ceiling,max,paced
    .venv/bin/python bench/api.py --backend postgres --modes max --task-cpu /tmp/tasks.json

``--task-cpu FILE`` has the service count its CPU by asyncio task (``bench/task_cpu``)
and prints each mode's shares: the request tasks, the market writer, the loop's own
callbacks (a sampling profiler's shares mislead on this service: docs/operations.md,
"Single orders: lists as one parameter").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import uvloop

from task_cpu import read_task_cpu, task_cpu_env, task_cpu_table

R = TypeVar("R")

PASSWORD = "bench-password-1"
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class Result:
    backend: str
    mode: str
    clients: int
    submissions: int
    errors: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    server_cpu_ms: float  # the service's CPU time per submission (all its threads)
    orders_per_request: int = 1
    ratio: float | None = None
    replicas: int = 1  # per_second over the ceiling mode's requests per second


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Service:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.url = f"http://127.0.0.1:{env['WATTX_PORT']}"
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "wattx.cli.main", *args],
            env=self.env,
            check=True,
            capture_output=True,
        )

    def start(self, timeout_s: float | None = None) -> None:
        """Start ``wattx up`` and wait until it is ready (start-up deploys the contracts)."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "wattx.cli.main", "up"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # A busy shared machine may need longer: WATTX_BENCH_START_TIMEOUT_S.
        timeout_s = timeout_s or float(os.environ.get("WATTX_BENCH_START_TIMEOUT_S", "240"))
        deadline = time.monotonic() + timeout_s
        # One client for every poll: each new one loads the CA bundle (35 ms of CPU).
        with httpx.Client(timeout=1) as http:
            while time.monotonic() < deadline:
                try:
                    if http.get(f"{self.url}/readyz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        raise RuntimeError("wattx up did not become ready")

    def cpu_seconds(self) -> float:
        """CPU time the service process has used so far (Linux /proc)."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


class RawHttpConnection:
    """A minimal HTTP/1.1 keep-alive client for the measured loop.

    A full client library costs the load generator about a millisecond of CPU
    per request, on the same two cores as the service: it would measure
    itself. This one writes prebuilt request bytes and reads the status, the
    ``Content-Length`` and the body (the service answers every request with a
    length), about 0.1 ms per request.
    """

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        host_port = url.split("://", 1)[1]
        self.host, port = host_port.rsplit(":", 1)
        self.port = int(port)
        self.fixed = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        assert self.reader is not None
        assert self.writer is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.fixed}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode("latin-1") + body)
        answer = await self.reader.readuntil(b"\r\n\r\n")
        status = int(answer[9:12])
        at = answer.lower().find(b"\r\ncontent-length:")
        length = int(answer[at + 17 : answer.index(b"\r\n", at + 2)])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@contextlib.asynccontextmanager
async def live_service(backend: str, **extra_env: str) -> AsyncIterator[Service]:
    """A real ``wattx up`` on a scratch SQLite file or PostgreSQL database, with an operator."""
    async with live_replicas(backend, 1, **extra_env) as services:
        yield services[0]


@contextlib.asynccontextmanager
async def live_replicas(
    backend: str, replicas: int, **extra_env: str
) -> AsyncIterator[list[Service]]:
    """Real ``wattx up`` replicas on a scratch SQLite file or PostgreSQL database, with
    an operator (more than one: PostgreSQL only, electing one market writer)."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WATTX_")}
        env.update(
            WATTX_DATA_DIR=str(Path(tmp) / "data"),
            WATTX_PORT=str(_free_port()),
            WATTX_LOG_LEVEL="WARNING",
            WATTX_RATE_LIMIT_AUTH_PER_WINDOW="100000",
            WATTX_RATE_LIMIT_DEFAULT_PER_WINDOW="100000000",
            **extra_env,
        )
        pg_name = None
        if backend == "postgres":
            pg_name = f"wattx_bench_{uuid.uuid4().hex[:8]}"
            conn = await asyncpg.connect(PG_ADMIN_DSN)
            await conn.execute(f'CREATE DATABASE "{pg_name}"')
            await conn.close()
            env["WATTX_DATABASE_URL"] = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{pg_name}"
        if replicas > 1:
            env.update(WATTX_MARKET_WRITER="elect", WATTX_JWT_SECRET=uuid.uuid4().hex)
        services = [Service(env)]
        services += [Service({**env, "WATTX_PORT": str(_free_port())}) for _ in range(replicas - 1)]
        try:
            services[0].cli("db", "upgrade")
            services[0].cli(
                "admin", "create-operator", "--email", "op@bench.test", "--password", PASSWORD
            )
            for service in services:
                service.start()
            yield services
        finally:
            for service in services:
                service.stop()
            if pg_name:
                conn = await asyncpg.connect(PG_ADMIN_DSN)
                await conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
                await conn.close()


MARKET_ENV = {"WATTX_EPOCH_LENGTH_S": "86400", "WATTX_GATE_CLOSURE_LEAD_S": "0"}
"""Day-long epochs whose gate never closes during a run: every order goes to one book."""


async def _participants(http: httpx.AsyncClient, count: int) -> list[tuple[str, str]]:
    """``count`` admitted, funded participants: (side, access token)."""
    login = await http.post(
        "/api/v1/auth/login", json={"email": "op@bench.test", "password": PASSWORD}
    )
    op = {"Authorization": f"Bearer {login.json()['access_token']}"}
    made = []
    for i in range(count):
        side = "sell" if i % 2 == 0 else "buy"
        email = f"u{i}-{uuid.uuid4().hex[:6]}@bench.test"
        role = "prosumer" if side == "sell" else "consumer"
        signup = await http.post(
            "/api/v1/auth/signup",
            json={"email": email, "password": PASSWORD, "display_name": email, "role": role},
        )
        user_id = signup.json()["id"]
        await http.patch(f"/api/v1/admin/users/{user_id}", json={"status": "admitted"}, headers=op)
        grant = (
            ("energy-grants", {"qty_wh": 10**9})
            if side == "sell"
            else (
                "credit-deposits",
                {"amount": 10**13},
            )
        )
        await http.post(f"/api/v1/admin/users/{user_id}/{grant[0]}", json=grant[1], headers=op)
        token = await http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        made.append((side, token.json()["access_token"]))
    return made


async def _bounds(http: httpx.AsyncClient, token: str) -> tuple[int, int]:
    zone = await http.get("/api/v1/zones/main", headers={"Authorization": f"Bearer {token}"})
    bands = zone.json()["tariff"]
    return max(b["feed_in"] for b in bands), min(b["retail"] for b in bands)


async def _client(
    url: str,
    side: str,
    token: str,
    bounds: tuple[int, int],
    start_line: asyncio.Barrier,
    seconds: float,
    interval: float | None,
    latencies: list[float],
    errors: list[int],
    seed: int,
    batch: int = 0,
    bare: bool = False,
) -> None:
    rng = random.Random(seed)
    floor, ceiling = bounds
    mid = (floor + ceiling) // 2
    connection = RawHttpConnection(url, {"Authorization": f"Bearer {token}"})
    await connection.open()
    try:
        # Connect, and let the service check this client's session once, before the clock
        # starts: the figures are for a market that is running, not for 50 clients' first
        # requests after their logins, which all read their sessions at the same instant.
        await connection.request("GET", "/api/v1/users/me")
        await start_line.wait()
        until = time.perf_counter() + seconds
        next_at = time.perf_counter()
        if interval is not None:
            # Spread the clients' schedules so the load is even, not 50-request bursts.
            next_at += rng.random() * interval
            await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
        while time.perf_counter() < until:
            if interval is not None:
                next_at += interval
            if bare:
                started = time.perf_counter()
                status, _answer = await connection.request("GET", "/healthz")
                latencies.append(time.perf_counter() - started)
                if status != 200:
                    errors.append(status)
            elif batch:
                orders = [_order_body(rng, side, mid) for _ in range(batch)]
                body = json.dumps({"orders": orders}).encode()
                started = time.perf_counter()
                status, answer = await connection.request("POST", "/api/v1/orders/batch", body)
                latencies.append(time.perf_counter() - started)
                if status not in (201, 207):
                    errors.extend([status] * batch)
                else:
                    errors.extend([409] * json.loads(answer)["refused"])
            else:
                body = json.dumps(_order_body(rng, side, mid)).encode()
                started = time.perf_counter()
                status, _answer = await connection.request("POST", "/api/v1/orders", body)
                latencies.append(time.perf_counter() - started)
                if status != 201:
                    errors.append(status)
            if interval is not None:
                delay = next_at - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
    finally:
        connection.close()


def _order_body(rng: random.Random, side: str, mid: int) -> dict[str, object]:
    # Buyers bid below the middle, sellers ask above it; 5 % of each cross it.
    if side == "buy":
        crosses = rng.random() < 0.05
        price = mid + rng.randint(1, 5_000) if crosses else mid - rng.randint(1, 50_000)
    else:
        crosses = rng.random() < 0.05
        price = mid - rng.randint(1, 5_000) if crosses else mid + rng.randint(1, 50_000)
    return {"side": side, "qty_wh": rng.randint(10, 500), "limit_price": price, "zone": "main"}


async def _run_mode(
    urls: list[str],
    people: list[tuple[str, str]],
    bounds: tuple[int, int],
    seconds: float,
    rate: float | None,
    batch: int = 0,
    bare: bool = False,
) -> tuple[list[float], list[int], float]:
    latencies: list[float] = []
    errors: list[int] = []
    interval = len(people) / rate if rate else None
    start_line = asyncio.Barrier(len(people) + 1)
    clients = asyncio.gather(
        *(
            _client(
                urls[seed % len(urls)],
                side,
                token,
                bounds,
                start_line,
                seconds,
                interval,
                latencies,
                errors,
                seed,
                batch,
                bare,
            )
            for seed, (side, token) in enumerate(people)
        )
    )
    await start_line.wait()
    started = time.perf_counter()
    await clients
    return latencies, errors, time.perf_counter() - started


def _summarise(
    backend: str,
    mode: str,
    clients: int,
    latencies: list[float],
    errors: list[int],
    elapsed: float,
    cpu_s: float,
    per_request: int = 1,
) -> Result:
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    submissions = len(latencies) * per_request
    return Result(
        backend=backend,
        mode=mode,
        clients=clients,
        submissions=submissions,
        errors=len(errors),
        seconds=round(elapsed, 2),
        per_second=round(submissions / elapsed, 1),
        p50_ms=round(statistics.median(ordered) * 1000, 2),
        p99_ms=round(pct(0.99), 2),
        max_ms=round(ordered[-1] * 1000, 2),
        server_cpu_ms=round(cpu_s * 1000 / max(1, submissions), 3),
        orders_per_request=per_request,
    )


async def _bench_backend(backend: str, args: argparse.Namespace) -> list[Result]:
    extra_env = dict(MARKET_ENV)
    if args.task_cpu:
        extra_env.update(task_cpu_env(Path(args.task_cpu)))
    async with live_replicas(backend, args.replicas, **extra_env) as services:
        urls = [service.url for service in services]
        async with httpx.AsyncClient(base_url=urls[0], timeout=30) as http:
            people = await _participants(http, args.clients)
            bounds = await _bounds(http, people[0][1])
        results = []
        # (name, rate, orders per batch request or 0, clients)
        modes: list[tuple[str, float | None, int, list[tuple[str, str]]]] = []
        if "ceiling" in args.modes:
            modes.append(("ceiling", None, -1, people))
        if "max" in args.modes:
            modes.append(("max", None, 0, people))
        if "paced" in args.modes:
            modes += [(f"paced {rate:g}/s", rate, 0, people) for rate in args.rates]
        if "batch" in args.modes:
            modes.append((f"batch {args.batch}", None, args.batch, people[: args.batch_clients]))
        for mode, rate, batch, clients in modes:
            print(f"[{backend}] {mode} for {args.seconds:g} s", file=sys.stderr, flush=True)
            cpu_before = sum(service.cpu_seconds() for service in services)
            tasks_before = read_task_cpu(Path(args.task_cpu)) if args.task_cpu else None
            latencies, errors, elapsed = await _run_mode(
                urls, clients, bounds, args.seconds, rate, max(batch, 0), batch < 0
            )
            cpu_s = sum(service.cpu_seconds() for service in services) - cpu_before
            if tasks_before is not None:
                submissions = len(latencies) * max(batch, 1)
                after = read_task_cpu(Path(args.task_cpu))
                print(task_cpu_table(tasks_before, after, submissions), file=sys.stderr)
            results.append(
                _summarise(
                    backend, mode, len(clients), latencies, errors, elapsed, cpu_s, max(batch, 1)
                )
            )
        ceiling = next((r.per_second for r in results if r.mode == "ceiling"), None)
        for r in results:
            r.replicas = len(services)
            if ceiling:
                r.ratio = round(r.per_second / ceiling, 3)
        return results


def _table(results: list[Result]) -> str:
    header = (
        f"{'backend':<9} {'repl':>4} {'mode':<13} {'clients':>7} {'subs':>7} {'errors':>6} "
        f"{'subs/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'cpu ms':>7} {'ratio':>6}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        lines.append(
            f"{r.backend:<9} {r.replicas:>4} {r.mode:<13} {r.clients:>7} "
            f"{r.submissions:>7} {r.errors:>6} "
            f"{r.per_second:>8.1f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.max_ms:>8.2f} "
            f"{r.server_cpu_ms:>7.2f} {'' if r.ratio is None else f'{r.ratio:.3f}':>6}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15.0, help="per mode")
    parser.add_argument(
        "--rates",
        type=lambda text: [float(r) for r in text.split(",")],
        default=[100.0, 500.0],
        help="comma-separated targets of the paced modes (submissions/s)",
    )
    parser.add_argument(
        "--modes",
        type=lambda text: set(text.split(",")),
        default={"ceiling", "max", "paced", "batch"},
        help="comma-separated modes to run: ceiling, max, paced, batch",
    )
    parser.add_argument("--batch", type=int, default=500, help="orders per batch request")
    parser.add_argument("--batch-clients", type=int, default=4, help="clients in batch mode")
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="wattx up processes on one PostgreSQL database, electing one market writer",
    )
    parser.add_argument(
        "--task-cpu",
        metavar="FILE",
        help="count the service's CPU by asyncio task (bench/task_cpu), kept in FILE; "
        "each mode's shares go to stderr",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if args.replicas < 1 or (args.replicas > 1 and args.backend != "postgres"):
        parser.exit(2, "bench/api.py: --replicas above 1 needs --backend postgres\n")
    if args.task_cpu and args.replicas > 1:
        parser.exit(2, "bench/api.py: --task-cpu counts one service: use --replicas 1\n")
    run_and_print(_bench_backend, args, _table)


def run_and_print(
    bench_backend: Callable[[str, argparse.Namespace], Coroutine[Any, Any, list[R]]],
    args: argparse.Namespace,
    table: Callable[[list[R]], str],
) -> None:
    """Run ``bench_backend`` for the backends ``args.backend`` names; print a table or JSON."""
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results: list[R] = []
    for backend in backends:
        # uvloop keeps the load generator's own CPU cost down on a small machine.
        results.extend(uvloop.run(bench_backend(backend, args)))
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))  # type: ignore[call-overload]
    else:
        print(table(results))


if __name__ == "__main__":
    main()
