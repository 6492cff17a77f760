"""Edge nodes against one real `wattx up`: links held, heartbeats handled, command latency.

Starts the service as a subprocess (see ``bench/api.py``), enrols ``--nodes``
nodes through the API (registration token, enrolment), opens one link per node
(the challenge signed with the node's own key), then

* heartbeats: first every node sends one heartbeat, the nodes spread over one
  interval (``--window`` / ``--heartbeats`` seconds): the first of the incentive
  period, which creates the node's activity row (once a day in a real fleet),
  reported apart; then every node sends ``--heartbeats`` heartbeats, one every
  interval (the nodes' sends spread over the interval, nothing waited after the
  last), so the window carries the steady rate; reports heartbeats per second
  handled and the service's CPU share of one core over the window
  (``--heartbeats 2 --window 60``: the 30-second interval of the daemon);
* idle: the service's CPU share of one core with every link held and nothing
  sent over ``--window`` seconds, at most 60 (the sweeps, health; a link silent
  for five heartbeat intervals is closed);
* commands: ``--commands`` diagnostics commands, issued through the API round
  robin over the nodes; each simulated node persists nothing but answers
  ``node_durable`` at once, so the figure is the platform's: from the issuing
  POST to the command's arrival at the node, and to the service recording the
  node's ``node_durable`` ack;
* replay (``--replay``): one real node daemon (``wattx.nodes.daemon``) whose
  on-disk buffer holds ``--replay-hours`` of readings of ``--replay-meters``
  meters (one signed batch per meter every ``--reading-interval-s``: the backlog
  of a site offline that long) links to the service and drains it, while one
  more meter keeps publishing live batches every ``--live-interval-s``; reports
  the drain time, how many times faster than real time that is (hours offline ÷
  drain time), and the live batches' time from the node's buffer to the
  service's verdict during the drain (live data keeps priority);
* restart (``--restart``): the service is stopped (SIGTERM) and started again on
  the same database; every simulated node reconnects as the daemon does
  (exponential backoff with full jitter, 0.5 s doubling to 30 s); reports the time from
  the new process's start, and from its readiness, until every node is linked.

The simulated nodes are bare WebSocket clients (not the daemon), so the load
generator stays small beside the service on one machine; they run in this
process (uvloop).

    .venv/bin/python bench/nodes.py --nodes 500
    .venv/bin/python bench/nodes.py --nodes 5000 --heartbeats 2 --window 60 --restart --json
    .venv/bin/python bench/nodes.py --backend postgres --nodes 1000 --json
    .venv/bin/python bench/nodes.py --nodes 0 --replay --json      # the replay alone

Kill runs (``--kill-commands N``, docs/nodes.md "10 000 commands and a kill -9"): N
``diagnostics`` commands, the service killed with SIGKILL once at a random point and started
again. The nodes are ``--nodes`` simulated ones, or with ``--daemons D`` D real node daemons
(``wattx node enrol``, then ``wattx node run``, one process and one on-disk store each),
``--daemon-kills`` times one of them killed with SIGKILL at a random moment (from ``--seed``)
and started again; the node side of the check is then read from the daemons' stores:

    .venv/bin/python bench/nodes.py --daemons 25 --kill-commands 10000 --kill-job-size 25 \
        --kill-concurrency 4 --daemon-kills 20 --seed 7 --restart-timeout 900
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import websockets

sys.path.insert(0, str(Path(__file__).parent))
from api import PASSWORD, Service, live_service, run_and_print
from ingest import _register_meters
from profiling import start_profiler, stop_profiler
from wattx.metering import reading_batch_to_json
from wattx.nodes import challenge
from wattx.nodes.backoff import next_step_s, reconnect_wait_s
from wattx.nodes.daemon.config import KEY_NAME, NodeConfig, write_key
from wattx.nodes.daemon.liveness import PING_EVERY_HEARTBEATS
from wattx.nodes.daemon.runner import NodeDaemon
from wattx.nodes.frames import encode


@dataclass
class Result:
    backend: str
    nodes: int
    linked: int
    link_all_s: float
    heartbeats: int
    heartbeats_per_s: float
    heartbeat_cpu_pct_of_core: float
    idle_cpu_pct_of_core: float
    commands: int
    command_to_node_p50_ms: float
    command_to_node_p99_ms: float
    command_to_durable_p50_ms: float
    command_to_durable_p99_ms: float
    commands_lost: int
    relinked_after_restart: int
    restart_all_back_from_start_s: float
    restart_all_back_from_ready_s: float
    replay_batches: int = -1
    replay_offline_h: float = -1
    replay_drain_s: float = -1
    replay_x_real_time: float = -1
    replay_refused: int = -1
    live_batches: int = -1
    live_during_replay_p50_ms: float = -1
    live_during_replay_p99_ms: float = -1
    client_cpu_linking_pct_of_core: float = -1
    """This process (the simulated nodes) while every node links for the first time."""
    first_heartbeats_cpu_pct_of_core: float = -1
    """The service over the interval of each node's first heartbeat of the incentive period
    (each creates the node's activity row of the period), before the steady window."""
    client_cpu_heartbeat_pct_of_core: float = -1
    service_cpu_relinking_pct_of_core: float = -1
    """The new service process from its readiness until every node is back."""
    client_cpu_relinking_pct_of_core: float = -1


@dataclass
class SimNode:
    node_id: str
    seed: bytes
    arrived: dict[str, float] = field(default_factory=dict)
    ws: websockets.ClientConnection | None = None
    linked: asyncio.Event = field(default_factory=asyncio.Event)
    links: int = 0
    apply: bool = False
    """Carry commands out (the kill run): kept by id, run once, outcome re-sent on a resend."""
    deliveries: dict[str, int] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)


async def _operator_and_owner(http: httpx.AsyncClient) -> tuple[dict[str, str], str]:
    """The operator's headers and a new admitted node operator's user id."""
    login = await http.post(
        "/api/v1/auth/login", json={"email": "op@bench.test", "password": PASSWORD}
    )
    op = {"Authorization": f"Bearer {login.json()['access_token']}"}
    email = f"nodeop-{uuid.uuid4().hex[:6]}@bench.test"
    signup = await http.post(
        "/api/v1/auth/signup",
        json={"email": email, "password": PASSWORD, "display_name": email, "role": "node_operator"},
    )
    owner = signup.json()["id"]
    await http.patch(f"/api/v1/admin/users/{owner}", json={"status": "admitted"}, headers=op)
    return op, owner


async def _enrol(http: httpx.AsyncClient, count: int) -> list[SimNode]:
    op, owner = await _operator_and_owner(http)

    async def one(i: int) -> SimNode:
        token = await http.post(
            "/api/v1/nodes/registration-tokens",
            json={"owner_id": owner, "name": f"site-{i}"},
            headers=op,
        )
        seed = os.urandom(32)
        enrolled = await http.post(
            "/api/v1/nodes/enrol",
            json={
                "registration_token": token.json()["token"],
                "public_key": challenge.public_key_hex(seed),
            },
        )
        return SimNode(enrolled.json()["node_id"], seed)

    async def retried(i: int) -> SimNode:
        # A keep-alive connection the service closed at the same instant: try again
        # with a new token (a node enrolled by a lost answer is left unlinked).
        for _ in range(2):
            with contextlib.suppress(httpx.TransportError):
                return await one(i)
        return await one(i)

    nodes: list[SimNode] = []
    for chunk in range(0, count, 20):
        batch = range(chunk, min(count, chunk + 20))
        nodes.extend(await asyncio.gather(*(retried(i) for i in batch)))
        if len(nodes) % 500 == 0 or len(nodes) == count:
            _progress(f"enrolled {len(nodes)}/{count} nodes")
    return nodes


def _progress(message: str) -> None:
    print(f"[nodes] {message}", file=sys.stderr, flush=True)


# Links being opened at once by this load generator (its own CPU is the limit).
_OPENING = asyncio.Semaphore(500)


async def _link(url: str, node: SimNode) -> None:
    async with _OPENING:
        # As the daemon: no keepalive timer and no compression; a ping goes with one
        # heartbeat in ten (see _heartbeats).
        ws = await websockets.connect(url, open_timeout=60, ping_interval=None, compression=None)
        hello = json.loads(await ws.recv())
        signature = challenge.sign(challenge.link_message(node.node_id, hello["nonce"]), node.seed)
        await ws.send(encode("auth", node_id=node.node_id, signature=signature))
        welcome = json.loads(await ws.recv())
    if welcome["type"] != "welcome":
        await ws.close()
        raise ConnectionError(f"not welcomed: {welcome}")
    node.ws = ws
    node.links += 1
    node.linked.set()


async def _serve(node: SimNode) -> None:
    """Answer every command with node_durable at once; note when it arrived."""
    assert node.ws is not None
    async for raw in node.ws:
        frame = json.loads(raw)
        if frame["type"] == "command":
            command_id = frame["command"]["id"]
            node.arrived.setdefault(command_id, time.perf_counter())
            node.deliveries[command_id] = node.deliveries.get(command_id, 0) + 1
            # As the daemon does: kept (here in memory: this process is not the one
            # killed) before node_durable; a known id is never run again, its outcome
            # is sent again.
            await node.ws.send(encode("ack", id=command_id, state="node_durable"))
            if node.apply:
                if command_id not in node.runs:
                    node.runs[command_id] = 1
                await node.ws.send(
                    encode("ack", id=command_id, state="applied", result={"ran": True})
                )


async def _keep_linked(url: str, node: SimNode) -> None:
    """Serve the link; when it drops, link again as the daemon does (exponential
    backoff with full jitter, 0.5 s doubling to 30 s: ``wattx.nodes.backoff``)."""
    step = 0.5
    while True:
        if node.ws is None:
            try:
                await _link(url, node)
                step = 0.5
            except (OSError, websockets.WebSocketException, TimeoutError, ConnectionError):
                await asyncio.sleep(reconnect_wait_s(step, cap_s=30.0))
                step = next_step_s(step, cap_s=30.0)
                continue
        with contextlib.suppress(websockets.WebSocketException):
            await _serve(node)
        node.ws = None
        node.linked.clear()


async def _unlink(keepers: list[asyncio.Task[None]], nodes: list[SimNode]) -> None:
    """The end of a run: stop the keepers (no relinking), then close every node's link."""
    for task in keepers:
        task.cancel()
    await asyncio.gather(*keepers, return_exceptions=True)
    for n in nodes:
        if n.ws is not None:
            await n.ws.close()


async def _heartbeats(
    node: SimNode, count: int, window_s: float, offset_s: float, sent_before: int = 0
) -> None:
    first_beat = int(node.node_id, 16) % PING_EVERY_HEARTBEATS + sent_before
    await asyncio.sleep(offset_s)
    for i in range(count):
        if i:
            await asyncio.sleep(window_s / count)
        if node.ws is not None:
            await node.ws.send(
                encode("heartbeat", uptime_s=i, version="bench", buffer_depth=0, devices={})
            )
            # As the daemon: a ping with one heartbeat in ten (each node at its own phase,
            # as if its link had come up at its own moment).
            if (first_beat + i) % PING_EVERY_HEARTBEATS == 0:
                pong = asyncio.ensure_future(await node.ws.ping())
                pong.add_done_callback(lambda done: done.cancelled() or done.exception())


async def _all_arrived(issued: dict[str, tuple[SimNode, float]], *, within_s: float) -> None:
    deadline = time.perf_counter() + within_s
    for command_id, (node, _) in issued.items():
        while command_id not in node.arrived and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def _bench_backend(backend: str, args: argparse.Namespace) -> list[Result]:
    async with live_service(
        backend,
        WATTX_NODE_COMMAND_POLL_S="5",
        WATTX_NODE_LINK_RECHECK_S="30",
    ) as service:
        result = await _run(service, backend, args) if args.nodes else _no_links(backend)
        if args.replay:
            async with httpx.AsyncClient(base_url=service.url, timeout=120) as http:
                result = replace(result, **await _replay(service, http, args))
        return [result]


def _no_links(backend: str) -> Result:
    return Result(backend, 0, 0, -1, 0, -1, -1, -1, 0, -1, -1, -1, -1, 0, 0, -1, -1)


async def _all_linked(nodes: list[SimNode], *, within_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(n.linked.wait() for n in nodes)), within_s)


async def _cpu_share(service: Service, work: Coroutine[Any, Any, Any]) -> tuple[float, float]:
    """The service's CPU share of one core (%) while ``work`` runs, and its wall time."""
    cpu_before, wall_before = service.cpu_seconds(), time.perf_counter()
    await work
    wall = time.perf_counter() - wall_before
    return 100 * (service.cpu_seconds() - cpu_before) / wall, wall


def _own_cpu_s() -> float:
    """CPU time this process (the load generator) has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _OwnCpu:
    """This process's CPU share of one core (%) between its start and :meth:`pct`."""

    def __init__(self) -> None:
        self._cpu, self._wall = _own_cpu_s(), time.perf_counter()

    def pct(self) -> float:
        return round(100 * (_own_cpu_s() - self._cpu) / (time.perf_counter() - self._wall), 1)


IDLE_MAX_S = 60.0


async def _run(service: Service, backend: str, args: argparse.Namespace) -> Result:
    global _OPENING
    _OPENING = asyncio.Semaphore(500)  # bound to this run's event loop
    async with httpx.AsyncClient(base_url=service.url, timeout=120) as http:
        nodes = await _enrol(http, args.nodes)
        link_url = service.url.replace("http://", "ws://") + "/api/v1/nodes/link"
        started = time.perf_counter()
        client_linking = _OwnCpu()
        # Every node dials as the daemon does (a refused or timed-out link retries).
        keepers = [asyncio.create_task(_keep_linked(link_url, n)) for n in nodes]
        await _all_linked(nodes, within_s=args.restart_timeout)
        link_all_s = time.perf_counter() - started
        client_linking_pct = client_linking.pct()
        _progress(
            f"{sum(n.linked.is_set() for n in nodes)} linked in {link_all_s:.1f} s "
            f"(load generator CPU {client_linking_pct:.1f} %)"
        )

        profiler = start_profiler(service, f"{args.profile}-idle" if args.profile else None)
        # Idle at most IDLE_MAX_S: the nodes send nothing meanwhile, and the service closes
        # a link silent for five heartbeat intervals (150 s at the default 30 s).
        idle_pct, _ = await _cpu_share(service, asyncio.sleep(min(args.window, IDLE_MAX_S)))
        if profiler is not None:
            stop_profiler(*profiler)
        # Each node sends every ``interval`` seconds, the nodes' first sends spread over the
        # first interval, and nothing waits after the last send: the measured wall is the
        # window, so the CPU share is that of the steady rate nodes × heartbeats / window.
        interval = args.window / args.heartbeats
        # First, one interval of each node's first heartbeat of the incentive period (the
        # one that creates its activity row, once a day in a real fleet), measured apart:
        # the window after it carries the steady rate.
        first_pct, _ = await _cpu_share(
            service,
            asyncio.gather(
                *(
                    _heartbeats(n, 1, interval, i * interval / len(nodes))
                    for i, n in enumerate(nodes)
                ),
                asyncio.sleep(interval),
            ),
        )
        _progress(f"first heartbeats of the period: service CPU {first_pct:.1f} %")
        profiler = start_profiler(service, f"{args.profile}-heartbeats" if args.profile else None)
        client_heartbeat = _OwnCpu()
        heartbeat_pct, wall = await _cpu_share(
            service,
            asyncio.gather(
                *(
                    _heartbeats(n, args.heartbeats, args.window, i * interval / len(nodes), 1)
                    for i, n in enumerate(nodes)
                )
            ),
        )
        client_heartbeat_pct = client_heartbeat.pct()
        if profiler is not None:
            stop_profiler(*profiler)
        heartbeats = args.heartbeats * len(nodes)
        _progress(
            f"heartbeats: {heartbeats} in {wall:.1f} s, service CPU {heartbeat_pct:.1f} %, "
            f"load generator CPU {client_heartbeat_pct:.1f} %"
        )

        login = await http.post(
            "/api/v1/auth/login", json={"email": "op@bench.test", "password": PASSWORD}
        )
        op = {"Authorization": f"Bearer {login.json()['access_token']}"}
        issued: dict[str, tuple[SimNode, float]] = {}
        for i in range(args.commands):
            node = nodes[(i * 7919) % len(nodes)]
            t0 = time.perf_counter()
            response = await http.post(
                f"/api/v1/nodes/{node.node_id}/commands",
                json={"type": "diagnostics", "payload": {"name": "ping"}},
                headers=op,
            )
            issued[response.json()["id"]] = (node, t0)
            await asyncio.sleep(args.command_gap)
        to_node = []
        await _all_arrived(issued, within_s=60)
        for command_id, (node, t0) in issued.items():
            if command_id in node.arrived:
                to_node.append((node.arrived[command_id] - t0) * 1000)
        to_durable = []
        lost = 0
        for command_id, (node, _) in issued.items():
            row = await http.get(f"/api/v1/nodes/{node.node_id}/commands/{command_id}", headers=op)
            body = row.json()
            if body["durable_at"] is None:
                lost += 1
                continue
            to_durable.append(
                (
                    datetime.fromisoformat(body["durable_at"])
                    - datetime.fromisoformat(body["created_at"])
                ).total_seconds()
                * 1000
            )

        _progress(f"commands: {len(issued)} issued, {lost} not durable")
        from_start = from_ready = -1.0
        relinked = 0
        service_relinking_pct = client_relinking_pct = -1.0
        if args.restart:
            before = {n.node_id: n.links for n in nodes}
            service.stop()
            t_start = time.perf_counter()
            await asyncio.to_thread(service.start)
            t_ready = time.perf_counter()
            client_relinking = _OwnCpu()
            service_relinking_pct, _ = await _cpu_share(
                service, _all_linked(nodes, within_s=args.restart_timeout)
            )
            client_relinking_pct = client_relinking.pct()
            relinked = sum(1 for n in nodes if n.links > before[n.node_id] and n.linked.is_set())
            _progress(
                f"restart: {relinked} relinked; service CPU {service_relinking_pct:.1f} %, "
                f"load generator CPU {client_relinking_pct:.1f} %"
            )
            if relinked == len(nodes):
                done = time.perf_counter()
                from_start, from_ready = done - t_start, done - t_ready

        await _unlink(keepers, nodes)
        return Result(
            backend=backend,
            nodes=len(nodes),
            linked=sum(1 for n in nodes if n.links > 0),
            link_all_s=round(link_all_s, 2),
            heartbeats=heartbeats,
            heartbeats_per_s=round(heartbeats / wall, 1),
            heartbeat_cpu_pct_of_core=round(heartbeat_pct, 1),
            first_heartbeats_cpu_pct_of_core=round(first_pct, 1),
            idle_cpu_pct_of_core=round(idle_pct, 1),
            commands=len(issued),
            command_to_node_p50_ms=round(statistics.median(to_node), 1) if to_node else -1,
            command_to_node_p99_ms=round(_pct(to_node, 0.99), 1),
            command_to_durable_p50_ms=round(statistics.median(to_durable), 1) if to_durable else -1,
            command_to_durable_p99_ms=round(_pct(to_durable, 0.99), 1),
            commands_lost=lost,
            relinked_after_restart=relinked,
            restart_all_back_from_start_s=round(from_start, 1),
            restart_all_back_from_ready_s=round(from_ready, 1),
            client_cpu_linking_pct_of_core=client_linking_pct,
            client_cpu_heartbeat_pct_of_core=client_heartbeat_pct,
            service_cpu_relinking_pct_of_core=round(service_relinking_pct, 1),
            client_cpu_relinking_pct_of_core=client_relinking_pct,
        )


async def _replay(
    service: Service, http: httpx.AsyncClient, args: argparse.Namespace
) -> dict[str, Any]:
    """Drain a real daemon's backlog through the service while a live meter goes on."""
    signers = await _register_meters(http, args.replay_meters + 1)
    backlog_meters, live = signers[:-1], signers[-1]
    (node,) = await _enrol(http, 1)
    login = await http.post(
        "/api/v1/auth/login", json={"email": "op@bench.test", "password": PASSWORD}
    )
    op = {"Authorization": f"Bearer {login.json()['access_token']}"}
    for signer in signers:
        attached = await http.put(
            f"/api/v1/nodes/{node.node_id}/meters/{signer.meter_id}", headers=op
        )
        attached.raise_for_status()
    offline_s = args.replay_hours * 3600
    per_meter = int(offline_s // args.reading_interval_s)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=offline_s)
    backlog: list[tuple[str, dict[str, Any]]] = []
    for k in range(per_meter):
        at = start + timedelta(seconds=k * args.reading_interval_s)
        for signer in backlog_meters:
            reading = signer.record(at, exported_wh=5)
            backlog.append((signer.meter_id, reading_batch_to_json(signer.sign([reading]))))
    _progress(
        f"replay: {len(backlog)} batches signed ({args.replay_hours} h, "
        f"{len(backlog_meters)} meters)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        write_key(Path(tmp) / KEY_NAME, node.seed)
        config = NodeConfig(server=service.url, node_id=node.node_id, data_dir=tmp)
        config.save()
        daemon = NodeDaemon(config)
        newest_backlog = daemon.store.buffer_many(backlog)
        watch = sqlite3.connect(Path(tmp) / "node.sqlite3")
        live_in: dict[int, float] = {}
        live_out: dict[int, float] = {}
        began = time.perf_counter()
        runner = asyncio.create_task(daemon.run())

        async def produce() -> None:
            while True:
                now = datetime.now(UTC).replace(microsecond=0)
                reading = live.record(now, exported_wh=1)
                seq = daemon.buffer_batch(
                    live.meter_id, reading_batch_to_json(live.sign([reading]))
                )
                live_in[seq] = time.perf_counter()
                await asyncio.sleep(args.live_interval_s)

        # Live is what comes in once the link is up (before it, it is backlog too).
        await asyncio.wait_for(daemon.linked.wait(), timeout=args.replay_timeout)
        linked_after = time.perf_counter() - began
        producer = asyncio.create_task(produce())
        drained_at = None
        try:
            while drained_at is None or len(live_out) < len(live_in):
                waiting = {int(r[0]) for r in watch.execute("SELECT seq FROM outbox").fetchall()}
                now_perf = time.perf_counter()
                for seq in live_in:
                    if seq not in waiting and seq not in live_out:
                        live_out[seq] = now_perf
                if drained_at is None and not any(seq <= newest_backlog for seq in waiting):
                    drained_at = now_perf
                    producer.cancel()
                    _progress(
                        f"replay: drained in {drained_at - began:.1f} s "
                        f"(linked after {linked_after:.1f} s)"
                    )
                if now_perf - began > args.replay_timeout:
                    raise RuntimeError("the backlog did not drain in time")
                await asyncio.sleep(0.005)
        finally:
            producer.cancel()
            runner.cancel()
            await asyncio.gather(producer, runner, return_exceptions=True)
            watch_refused = watch.execute(
                "SELECT value FROM counters WHERE name = 'batches_refused'"
            ).fetchone()
            refused = int(watch_refused[0]) if watch_refused else 0
            watch.close()
    assert drained_at is not None
    drain_s = drained_at - began
    latencies = [(live_out[s] - live_in[s]) * 1000 for s in live_out]
    return {
        "replay_batches": len(backlog),
        "replay_offline_h": args.replay_hours,
        "replay_drain_s": round(drain_s, 1),
        "replay_x_real_time": round(offline_s / drain_s, 1),
        "replay_refused": refused,
        "live_batches": len(latencies),
        "live_during_replay_p50_ms": round(statistics.median(latencies), 1) if latencies else -1,
        "live_during_replay_p99_ms": round(_pct(latencies, 0.99), 1),
    }


class DaemonNode:
    """A real node daemon (``wattx node run``) in its own process, enrolled by
    ``wattx node enrol`` with its own key, config and on-disk store in ``data_dir``."""

    def __init__(self, node_id: str, data_dir: Path) -> None:
        self.node_id = node_id
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.lock = asyncio.Lock()
        self.kills = 0
        self.starts = 0

    def start(self) -> None:
        with open(self.data_dir / "daemon.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "wattx.cli.node",
                    "run",
                    "--data-dir",
                    str(self.data_dir),
                    "--log-level",
                    "WARNING",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.starts += 1

    async def kill(self) -> None:
        """SIGKILL, as a power cut would: nothing of the daemon runs after it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.process.wait)
        self.kills += 1

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                await asyncio.to_thread(self.process.wait)

    def stored_commands(self) -> dict[str, tuple[str, int]]:
        """The daemon's own durable record, read from its store on disk: command id →
        (state, times its run was started)."""
        path = self.data_dir / "node.sqlite3"
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return {
                r[0]: (r[1], int(r[2])) for r in db.execute("SELECT id, state, runs FROM commands")
            }


async def _enrol_daemons(
    service: Service, http: httpx.AsyncClient, count: int, root: Path
) -> list[DaemonNode]:
    """Enrol ``count`` nodes with ``wattx node enrol`` (the real CLI: a key of its own,
    ``node.json``), one data directory each under ``root``."""
    op, owner = await _operator_and_owner(http)
    gate = asyncio.Semaphore(4)
    # One token at a time: on PostgreSQL two at once for one owner may answer 409
    # conflict (a concurrent request), which a client retries.
    one_token = asyncio.Lock()

    async def one(i: int) -> DaemonNode:
        async with gate:
            async with one_token:
                token = await http.post(
                    "/api/v1/nodes/registration-tokens",
                    json={"owner_id": owner, "name": f"gateway-{i}"},
                    headers=op,
                )
            if token.status_code != 201:
                raise RuntimeError(f"registration token refused: {token.status_code} {token.text}")
            data_dir = root / f"node-{i:03d}"
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "wattx.cli.node",
                "enrol",
                "--server",
                service.url,
                "--registration-token",
                token.json()["token"],
                "--data-dir",
                str(data_dir),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            _, err = await proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"wattx node enrol failed: {err.decode().strip()}")
            config = json.loads((data_dir / "node.json").read_text())
            return DaemonNode(config["node_id"], data_dir)

    daemons = list(await asyncio.gather(*(one(i) for i in range(count))))
    _progress(f"enrolled {len(daemons)} node daemons (wattx node enrol)")
    return daemons


async def _daemons_linked(
    http: httpx.AsyncClient, op: dict[str, str], daemons: list[DaemonNode], within_s: float
) -> int:
    """Wait until the service reports every daemon linked; how many are."""
    deadline = time.perf_counter() + within_s
    linked = 0
    while True:
        linked = 0
        for d in daemons:
            stats = await http.get(f"/api/v1/nodes/{d.node_id}/stats", headers=op)
            linked += bool(stats.status_code == 200 and stats.json().get("linked"))
        if linked == len(daemons) or time.perf_counter() > deadline:
            return linked
        await asyncio.sleep(0.5)


@dataclass
class KillResult:
    backend: str
    nodes: int
    commands_issued: int
    """Rows in the database at the end: every POST answered 201, and those whose answer
    the kill took (the command may or may not have been stored)."""
    answered_201: int
    posts_without_answer: int
    killed_after: int
    """Requests (commands or jobs) answered 201 before the kill -9."""
    down_s: float
    applied: int
    failed: int
    failed_reasons: dict[str, int]
    not_finished: int
    answered_but_missing: int
    applied_not_run_on_node: int
    run_on_node_not_applied: int
    run_twice: int
    delivered_more_than_once: int
    all_finished_s: float
    service_cpu_s_after_restart: float = -1
    """The restarted service's CPU time from its readiness until every command finished."""
    resent_by_service: int = -1
    """Commands the service sent more than once (``retries``, its count of sends, above 1)."""
    daemons: int = 0
    """Real node daemons (``--daemons``); the counts below then come from their stores."""
    daemon_kills: int = 0
    daemon_kills_while_service_down: int = 0
    daemons_killed: int = 0
    """Distinct daemons killed at least once."""
    node_store_commands: int = -1
    """Command rows in the daemons' stores at the end, all daemons together."""
    node_store_unfinished: int = -1
    outcome_differs: int = -1
    """Commands whose outcome in the node's store differs from the service's (or that one
    side has and the other has not)."""
    node_store_runs: dict[str, int] = field(default_factory=dict)
    """How many commands the node stores show started 0, 1, 2, … times."""


async def _kill_run(service: Service, backend: str, args: argparse.Namespace) -> KillResult:
    """``--kill-commands N``: N commands over the nodes, the service killed with SIGKILL at
    a random point while they are issued and carried out, started again on the same
    database; then every command must end applied exactly once or failed with a reason.

    With ``--daemons D`` the nodes are D real daemons, each killed with SIGKILL at random
    moments (``--daemon-kills``) and started again; the node side of the check is then
    read from the daemons' stores on disk."""
    global _OPENING
    _OPENING = asyncio.Semaphore(500)
    rng = random.Random(args.seed)
    daemons: list[DaemonNode] = []
    with tempfile.TemporaryDirectory(prefix="wattx-nodes-") as root:
        try:
            async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
                return await _kill_fleet(service, backend, args, rng, http, Path(root), daemons)
        finally:
            for d in daemons:  # a run that failed half-way leaves no daemon behind
                if d.process is not None and d.process.poll() is None:
                    d.process.kill()
                    d.process.wait()


async def _kill_fleet(
    service: Service,
    backend: str,
    args: argparse.Namespace,
    rng: random.Random,
    http: httpx.AsyncClient,
    root: Path,
    daemons: list[DaemonNode],
) -> KillResult:
    nodes: list[SimNode] = []
    keepers: list[asyncio.Task[None]] = []
    login = await http.post(
        "/api/v1/auth/login", json={"email": "op@bench.test", "password": PASSWORD}
    )
    op = {"Authorization": f"Bearer {login.json()['access_token']}"}
    if args.daemons:
        daemons.extend(await _enrol_daemons(service, http, args.daemons, root))
        for d in daemons:
            d.start()
        linked = await _daemons_linked(http, op, daemons, args.restart_timeout)
        _progress(f"kill run: {linked} of {len(daemons)} daemons linked")
        ids = [d.node_id for d in daemons]
    else:
        nodes = await _enrol(http, args.nodes)
        for n in nodes:
            n.apply = True
        link_url = service.url.replace("http://", "ws://") + "/api/v1/nodes/link"
        keepers = [asyncio.create_task(_keep_linked(link_url, n)) for n in nodes]
        await _all_linked(nodes, within_s=args.restart_timeout)
        _progress(f"kill run: {sum(n.linked.is_set() for n in nodes)} linked")
        ids = [n.node_id for n in nodes]
    size = max(1, min(args.kill_job_size, len(ids)))
    total = -(-args.kill_commands // size)  # requests: single commands or jobs
    kill_at = rng.randint(total * 3 // 10, total * 7 // 10)
    # The daemons' kill schedule, drawn from the seed: after which answered request, which
    # daemon, a random moment (0–1 s) after it, and how long it stays down (0–3 s).
    daemon_kills: dict[int, list[tuple[int, float, float]]] = {}
    if daemons:
        for point in sorted(rng.choices(range(1, total), k=args.daemon_kills)):
            daemon_kills.setdefault(point, []).append(
                (rng.randrange(len(daemons)), rng.uniform(0, 1), rng.uniform(0, 3))
            )
    done = 0
    answered: set[str] = set()
    unanswered = 0
    back = asyncio.Event()
    back.set()
    down_s = 0.0
    kills_while_down = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    killers: list[asyncio.Task[None]] = []
    cpu_at_ready: list[float] = []

    async def kill_and_restart() -> None:
        nonlocal down_s
        back.clear()
        assert service.process is not None
        service.process.send_signal(signal.SIGKILL)
        service.process.wait()
        _progress(f"kill run: service killed after {len(answered)} answered")
        t0 = time.perf_counter()
        await asyncio.to_thread(service.start)
        down_s = time.perf_counter() - t0
        cpu_at_ready.append(service.cpu_seconds())
        back.set()
        _progress(f"kill run: service back after {down_s:.1f} s")

    async def kill_daemon(daemon: DaemonNode, after_s: float, stay_down_s: float) -> None:
        nonlocal kills_while_down
        await asyncio.sleep(after_s)
        async with daemon.lock:
            await daemon.kill()
            kills_while_down += not back.is_set()
            _progress(
                f"kill run: daemon {daemons.index(daemon)} killed (kill {daemon.kills} of it; "
                f"{len(answered)} commands answered)"
            )
            await asyncio.sleep(stay_down_s)
            daemon.start()

    async def issuer() -> None:
        nonlocal unanswered, done
        while not queue.empty():
            i = queue.get_nowait()
            body: dict[str, Any] = {"type": "diagnostics", "payload": {"name": "ping"}}
            if size == 1:
                path = f"/api/v1/nodes/{ids[(i * 7919) % len(ids)]}/commands"
            else:
                # One command to each of ``size`` nodes, tracked as a job.
                first = (i * size) % len(ids)
                body["node_ids"] = [ids[(first + k) % len(ids)] for k in range(size)]
                path = "/api/v1/nodes/jobs"
            while True:
                await back.wait()
                try:
                    response = await http.post(path, json=body, headers=op)
                except httpx.TransportError:
                    # The kill took the answer: stored or not, the rows say (a retry
                    # is a new command, which must end like any other).
                    unanswered += 1
                    await asyncio.sleep(0.2)
                    continue
                if response.status_code == 201:
                    answer = response.json()
                    if size == 1:
                        answered.add(answer["id"])
                    else:
                        answered.update(c["id"] for c in answer["commands"])
                    done += 1
                    break
                await asyncio.sleep(0.2)  # 503 while starting: try again
            if done % max(1, total // 20) == 0:
                _progress(f"kill run: {done}/{total} requests answered ({len(answered)} commands)")
            if done == kill_at:
                killers.append(asyncio.create_task(kill_and_restart()))
            for index, after_s, stay_down_s in daemon_kills.pop(done, []):
                killers.append(
                    asyncio.create_task(kill_daemon(daemons[index], after_s, stay_down_s))
                )

    await asyncio.gather(*(issuer() for _ in range(args.kill_concurrency)))
    await asyncio.gather(*killers)
    _progress(f"kill run: {len(answered)} answered 201, {unanswered} without an answer")
    began = time.perf_counter()
    finished_s = -1.0
    cpu_after_restart = -1.0
    rows: dict[str, _CommandRow] = {}
    last_note = began
    while time.perf_counter() - began < args.restart_timeout:
        rows = await _command_rows(service, backend)
        open_rows = sum(1 for r in rows.values() if r.state not in _TERMINAL)
        if not open_rows:
            finished_s = time.perf_counter() - began
            if cpu_at_ready:
                cpu_after_restart = service.cpu_seconds() - cpu_at_ready[0]
            break
        if time.perf_counter() - last_note > 10:
            last_note = time.perf_counter()
            _progress(f"kill run: {open_rows} of {len(rows)} commands not finished yet")
        await asyncio.sleep(1.0)
    await _unlink(keepers, nodes)
    await asyncio.gather(*(d.stop() for d in daemons))

    applied = {cid for cid, r in rows.items() if r.state == "applied"}
    reasons: dict[str, int] = {}
    for r in rows.values():
        if r.state in ("rejected", "expired"):
            key = f"{r.state}: {r.detail or 'expired before it became durable'}"
            reasons[key] = reasons.get(key, 0) + 1
    extra: dict[str, Any] = {}
    if daemons:
        # The node side from the daemons' own stores on disk, node by node.
        stores = {d.node_id: d.stored_commands() for d in daemons}
        ran: dict[str, int] = {}
        node_applied: set[str] = set()
        differs = 0
        runs_hist: dict[str, int] = {}
        for node_id, stored in stores.items():
            for cid, (state, runs) in stored.items():
                ran[cid] = runs
                runs_hist[str(runs)] = runs_hist.get(str(runs), 0) + 1
                if state == "applied":
                    node_applied.add(cid)
                row = rows.get(cid)
                if row is None or row.node_id != node_id or row.state != state:
                    differs += 1
            differs += sum(
                1
                for cid, r in rows.items()
                if r.node_id == node_id and r.state in ("applied", "rejected") and cid not in stored
            )
        extra = {
            "daemons": len(daemons),
            "daemon_kills": sum(d.kills for d in daemons),
            "daemon_kills_while_service_down": kills_while_down,
            "daemons_killed": sum(1 for d in daemons if d.kills),
            "node_store_commands": sum(len(s) for s in stores.values()),
            "node_store_unfinished": sum(
                1 for s in stores.values() for state, _ in s.values() if state == "node_durable"
            ),
            "outcome_differs": differs,
            "node_store_runs": dict(sorted(runs_hist.items())),
        }
        applied_not_run = len(applied - node_applied)
        run_not_applied = len(node_applied - applied)
        run_twice = sum(1 for runs in ran.values() if runs > 1)
        delivered_again = -1  # the daemon does not count deliveries; see resent_by_service
    else:
        sim_ran = {cid: count for n in nodes for cid, count in n.runs.items()}
        applied_not_run = len(applied - sim_ran.keys())
        run_not_applied = len(sim_ran.keys() - applied)
        run_twice = sum(1 for count in sim_ran.values() if count > 1)
        delivered_again = sum(1 for n in nodes for count in n.deliveries.values() if count > 1)
    return KillResult(
        backend=backend,
        nodes=len(ids),
        commands_issued=len(rows),
        answered_201=len(answered),
        posts_without_answer=unanswered,
        killed_after=kill_at,
        down_s=round(down_s, 1),
        applied=len(applied),
        failed=sum(reasons.values()),
        failed_reasons=reasons,
        not_finished=sum(1 for r in rows.values() if r.state not in _TERMINAL),
        answered_but_missing=len(answered - rows.keys()),
        applied_not_run_on_node=applied_not_run,
        run_on_node_not_applied=run_not_applied,
        run_twice=run_twice,
        delivered_more_than_once=delivered_again,
        all_finished_s=round(finished_s, 1),
        service_cpu_s_after_restart=round(cpu_after_restart, 2),
        resent_by_service=sum(1 for r in rows.values() if r.retries > 1),
        **extra,
    )


async def _kill_backend(backend: str, args: argparse.Namespace) -> list[KillResult]:
    async with live_service(
        backend,
        WATTX_NODE_COMMAND_POLL_S="5",
        WATTX_NODE_LINK_RECHECK_S="30",
    ) as service:
        return [await _kill_run(service, backend, args)]


def _kill_table(results: list[KillResult]) -> str:
    lines = [
        "| backend | nodes (daemons, kills of them) | commands (answered 201 / POSTs unanswered) "
        "| service killed after | down (s) | applied | failed (reasons) | not finished "
        "| 201 but missing | applied twice | applied ≠ run on node | outcome differs "
        "| delivered again / resent by the service | all finished after (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.nodes} ({r.daemons}, {r.daemon_kills}) | {r.commands_issued} "
            f"({r.answered_201} / {r.posts_without_answer}) | {r.killed_after} | {r.down_s} "
            f"| {r.applied} | {r.failed} {r.failed_reasons} | {r.not_finished} "
            f"| {r.answered_but_missing} | {r.run_twice} "
            f"| {r.applied_not_run_on_node + r.run_on_node_not_applied} | {r.outcome_differs} "
            f"| {r.delivered_more_than_once} / {r.resent_by_service} | {r.all_finished_s} |"
        )
    return "\n".join(lines)


_TERMINAL = ("applied", "rejected", "expired")


@dataclass(frozen=True, slots=True)
class _CommandRow:
    node_id: str
    state: str
    detail: str | None
    retries: int


async def _command_rows(service: Service, backend: str) -> dict[str, _CommandRow]:
    """Every command row (id → node, state, detail, resends), from the service's database."""
    query = "SELECT id, node_id, state, detail, retries FROM node_commands"
    url = service.env.get("WATTX_DATABASE_URL")
    if backend == "postgres":
        assert url is not None
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            return {
                r["id"]: _CommandRow(r["node_id"], r["state"], r["detail"], r["retries"])
                for r in await conn.fetch(query)
            }
        finally:
            await conn.close()
    path = Path(service.env["WATTX_DATA_DIR"]) / "wattx.sqlite3"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return {r[0]: _CommandRow(r[1], r[2], r[3], int(r[4])) for r in db.execute(query)}


def _table(results: list[Result]) -> str:
    lines = [
        "| backend | nodes linked | link all (s) | heartbeats/s | service CPU, heartbeats / idle "
        "(% of a core) | command → node p50/p99 (ms) | command → node_durable p50/p99 (ms) "
        "| lost | relinked after restart | all back from start / ready (s) "
        "| replay: batches, drain (s), × real time | live during replay p50/p99 (ms) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.linked}/{r.nodes} | {r.link_all_s} | {r.heartbeats_per_s} "
            f"| {r.heartbeat_cpu_pct_of_core} / {r.idle_cpu_pct_of_core} "
            f"| {r.command_to_node_p50_ms}/{r.command_to_node_p99_ms} "
            f"| {r.command_to_durable_p50_ms}/{r.command_to_durable_p99_ms} | {r.commands_lost} "
            f"| {r.relinked_after_restart} | {r.restart_all_back_from_start_s} / "
            f"{r.restart_all_back_from_ready_s} "
            f"| {r.replay_batches}, {r.replay_drain_s}, {r.replay_x_real_time}× "
            f"| {r.live_during_replay_p50_ms}/{r.live_during_replay_p99_ms} |"
        )
    return "\n".join(lines)


def _raise_fd_limit(nodes: int) -> None:
    """Each link is a descriptor in this process and one in the service (which inherits
    the limit): raise the soft limit to the hard one when the default is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * nodes + 1024
    if soft < needed:
        target = hard if hard == resource.RLIM_INFINITY else max(soft, min(hard, needed))
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft != resource.RLIM_INFINITY and soft < needed:
        sys.exit(
            f"bench/nodes.py: {nodes} links need about {needed} descriptors; the limit is {soft}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--heartbeats", type=int, default=3, help="per node, over the window")
    parser.add_argument("--window", type=float, default=10.0, help="seconds")
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument(
        "--command-gap", type=float, default=0.01, help="seconds between commands issued"
    )
    parser.add_argument("--restart", action="store_true", help="measure a service restart")
    parser.add_argument("--restart-timeout", type=float, default=180.0, help="seconds")
    parser.add_argument("--replay", action="store_true", help="measure a backlog's replay")
    parser.add_argument("--replay-hours", type=float, default=24.0, help="hours offline")
    parser.add_argument("--replay-meters", type=int, default=10)
    parser.add_argument("--reading-interval-s", type=float, default=60.0)
    parser.add_argument("--live-interval-s", type=float, default=1.0)
    parser.add_argument("--replay-timeout", type=float, default=1800.0, help="seconds")
    parser.add_argument(
        "--kill-commands",
        type=int,
        default=0,
        help="instead of the figures above: this many commands over --nodes nodes, the "
        "service killed with SIGKILL while they run and started again; checks that each "
        "ends applied exactly once or failed with a reason",
    )
    parser.add_argument("--kill-concurrency", type=int, default=16, help="POSTs in flight")
    parser.add_argument(
        "--kill-job-size",
        type=int,
        default=1,
        help="issue the commands as jobs of this many nodes each (1: one POST per command)",
    )
    parser.add_argument(
        "--daemons",
        type=int,
        default=0,
        help="with --kill-commands: the nodes are this many real node daemons (wattx node "
        "run, one process each) instead of --nodes simulated ones, killed with SIGKILL at "
        "random moments and started again",
    )
    parser.add_argument(
        "--daemon-kills", type=int, default=10, help="SIGKILLs of a daemon (with --daemons)"
    )
    parser.add_argument("--seed", type=int, default=None, help="of the kills' moments")
    parser.add_argument(
        "--profile",
        metavar="PREFIX",
        help="record the service with py-spy while idle and while heartbeating "
        "(PREFIX-idle.txt, PREFIX-heartbeats.txt)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.daemons < 0 or args.daemon_kills < 0:
        parser.error("--daemons and --daemon-kills must not be negative")
    if args.daemons and not args.kill_commands:
        parser.error("--daemons goes with --kill-commands")
    _raise_fd_limit(args.nodes)
    # A restart is timed from the new process's start: let it load cached bytecode,
    # as an installed service does, rather than compile every module again.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    if args.kill_commands:
        run_and_print(_kill_backend, args, _kill_table)
    else:
        run_and_print(_bench_backend, args, _table)


if __name__ == "__main__":
    main()
