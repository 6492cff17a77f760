"""Edge nodes against one real `wattx up`: links held, heartbeats handled, command latency.

Starts the service as a subprocess (see ``bench/api.py``), enrols ``--nodes``
nodes through the API (registration token, enrolment), opens one link per node
(the challenge signed with the node's own key), then

* heartbeats: every node sends ``--heartbeats`` heartbeats, spread evenly over
  ``--window`` seconds; reports heartbeats per second handled and the service's
  CPU share of one core over the window;
* commands: ``--commands`` diagnostics commands, issued through the API round
  robin over the nodes; each simulated node persists nothing but answers
  ``node_durable`` at once, so the figure is the platform's: from the issuing
  POST to the command's arrival at the node, and to the service recording the
  node's ``node_durable`` ack.

The simulated nodes are bare WebSocket clients (not the daemon), so the load
generator stays small beside the service on one machine.

    .venv/bin/python bench/nodes.py --nodes 500
    .venv/bin/python bench/nodes.py --backend postgres --nodes 1000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).parent))
from api import PASSWORD, Service, live_service, run_and_print
from wattx.nodes import challenge
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
    commands: int
    command_to_node_p50_ms: float
    command_to_node_p99_ms: float
    command_to_durable_p50_ms: float
    command_to_durable_p99_ms: float


@dataclass
class SimNode:
    node_id: str
    seed: bytes
    arrived: dict[str, float] = field(default_factory=dict)
    ws: websockets.ClientConnection | None = None


async def _enrol(http: httpx.AsyncClient, count: int) -> list[SimNode]:
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
    nodes = []
    for i in range(count):
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
        nodes.append(SimNode(enrolled.json()["node_id"], seed))
    return nodes


async def _link(url: str, node: SimNode) -> None:
    ws = await websockets.connect(url, open_timeout=60)
    hello = json.loads(await ws.recv())
    signature = challenge.sign(challenge.link_message(node.node_id, hello["nonce"]), node.seed)
    await ws.send(encode("auth", node_id=node.node_id, signature=signature))
    welcome = json.loads(await ws.recv())
    assert welcome["type"] == "welcome", welcome
    node.ws = ws


async def _serve(node: SimNode) -> None:
    """Answer every command with node_durable at once; note when it arrived."""
    assert node.ws is not None
    async for raw in node.ws:
        frame = json.loads(raw)
        if frame["type"] == "command":
            command_id = frame["command"]["id"]
            node.arrived[command_id] = time.perf_counter()
            await node.ws.send(encode("ack", id=command_id, state="node_durable"))


async def _heartbeats(node: SimNode, count: int, window_s: float, offset_s: float) -> None:
    assert node.ws is not None
    await asyncio.sleep(offset_s)
    for i in range(count):
        await node.ws.send(
            encode("heartbeat", uptime_s=i, version="bench", buffer_depth=0, devices={})
        )
        await asyncio.sleep(window_s / count)


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
        WATTX_NODE_COMMAND_POLL_S="30",
        WATTX_NODE_LINK_RECHECK_S="30",
    ) as service:
        return [await _run(service, backend, args)]


async def _run(service: Service, backend: str, args: argparse.Namespace) -> Result:
    async with httpx.AsyncClient(base_url=service.url, timeout=120) as http:
        nodes = await _enrol(http, args.nodes)
        link_url = service.url.replace("http://", "ws://") + "/api/v1/nodes/link"
        started = time.perf_counter()
        for chunk in range(0, len(nodes), 100):
            await asyncio.gather(*(_link(link_url, n) for n in nodes[chunk : chunk + 100]))
        link_all_s = time.perf_counter() - started
        servers = [asyncio.create_task(_serve(n)) for n in nodes]

        cpu_before, wall_before = service.cpu_seconds(), time.perf_counter()
        await asyncio.gather(
            *(
                _heartbeats(n, args.heartbeats, args.window, i * args.window / len(nodes) / 10)
                for i, n in enumerate(nodes)
            )
        )
        wall = time.perf_counter() - wall_before
        cpu = service.cpu_seconds() - cpu_before
        heartbeats = args.heartbeats * len(nodes)

        login = await http.post(
            "/api/v1/auth/login", json={"email": "op@bench.test", "password": PASSWORD}
        )
        op = {"Authorization": f"Bearer {login.json()['access_token']}"}
        issued: dict[str, tuple[SimNode, float]] = {}
        for i in range(args.commands):
            node = nodes[i % len(nodes)]
            t0 = time.perf_counter()
            response = await http.post(
                f"/api/v1/nodes/{node.node_id}/commands",
                json={"type": "diagnostics", "payload": {"name": "ping"}},
                headers=op,
            )
            issued[response.json()["id"]] = (node, t0)
        to_node = []
        await _all_arrived(issued, within_s=60)
        for command_id, (node, t0) in issued.items():
            if command_id in node.arrived:
                to_node.append((node.arrived[command_id] - t0) * 1000)
        to_durable = []
        for command_id, (node, _) in issued.items():
            row = await http.get(f"/api/v1/nodes/{node.node_id}/commands/{command_id}", headers=op)
            body = row.json()
            if body["durable_at"] is not None:
                issued_at = body["created_at"]
                durable_at = body["durable_at"]
                to_durable.append(
                    (
                        datetime.fromisoformat(durable_at) - datetime.fromisoformat(issued_at)
                    ).total_seconds()
                    * 1000
                )
        for task in servers:
            task.cancel()
        await asyncio.gather(*servers, return_exceptions=True)
        for n in nodes:
            if n.ws is not None:
                await n.ws.close()
        return Result(
            backend=backend,
            nodes=len(nodes),
            linked=sum(1 for n in nodes if n.ws is not None),
            link_all_s=round(link_all_s, 2),
            heartbeats=heartbeats,
            heartbeats_per_s=round(heartbeats / wall, 1),
            heartbeat_cpu_pct_of_core=round(100 * cpu / wall, 1),
            commands=len(issued),
            command_to_node_p50_ms=round(statistics.median(to_node), 1) if to_node else -1,
            command_to_node_p99_ms=round(_pct(to_node, 0.99), 1),
            command_to_durable_p50_ms=round(statistics.median(to_durable), 1) if to_durable else -1,
            command_to_durable_p99_ms=round(_pct(to_durable, 0.99), 1),
        )


def _table(results: list[Result]) -> str:
    lines = [
        "| backend | nodes linked | link all (s) | heartbeats/s | service CPU (% of a core) "
        "| command → node p50/p99 (ms) | command → node_durable p50/p99 (ms) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.backend} | {r.linked}/{r.nodes} | {r.link_all_s} | {r.heartbeats_per_s} "
            f"| {r.heartbeat_cpu_pct_of_core} | {r.command_to_node_p50_ms}/"
            f"{r.command_to_node_p99_ms} | {r.command_to_durable_p50_ms}/"
            f"{r.command_to_durable_p99_ms} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--heartbeats", type=int, default=3, help="per node, over the window")
    parser.add_argument("--window", type=float, default=10.0, help="seconds")
    parser.add_argument("--commands", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    run_and_print(_bench_backend, parser.parse_args(), _table)


if __name__ == "__main__":
    main()
