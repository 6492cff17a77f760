"""Two versions of the service side by side: orders per second and CPU per order, interleaved.

On a shared machine the speed of a run drifts by a third within minutes, so two
runs of ``bench/api.py`` one after the other compare the machine as much as the
code. Here both versions run at once: ``--base`` (a git revision, its ``src/``
exported to a temporary directory and compiled) and the working tree, each a real
``wattx up`` on its own scratch database with its own 50 funded participants.
The load then alternates between them in short windows (``--rounds`` of
``--seconds`` each, the order of the two swapped every round), so a drift of the
machine falls on both alike. The one idle meanwhile costs next to nothing.

Each window reports orders (or bare requests) per second and the service's CPU
per order (its own process, from /proc); the summary gives the medians and the
ratio new / base. ``--mode`` is one of ``bench/api.py``'s: ``batch`` (two clients
sending ``--batch`` orders per request), ``max`` (50 clients, single orders,
closed loop) or ``ceiling`` (the bare route).

    .venv/bin/python bench/compare.py --base HEAD                       # PostgreSQL, batch
    .venv/bin/python bench/compare.py --base ea11827 --mode max --rounds 8 --seconds 5
    .venv/bin/python bench/compare.py --base HEAD~2 --backend sqlite --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import uvloop

sys.path.insert(0, str(Path(__file__).parent))
from api import MARKET_ENV, Service, _bounds, _participants, _run_mode, live_replicas

REPOSITORY = Path(__file__).resolve().parents[1]


@dataclass
class Side:
    """One version under load: where its code is, and what each window measured."""

    name: str
    source: Path
    per_second: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)


@dataclass
class Comparison:
    backend: str
    mode: str
    base: str
    rounds: int
    seconds: float
    base_per_second: float
    new_per_second: float
    base_cpu_us: float
    new_cpu_us: float
    rate_ratio: float
    cpu_ratio: float
    windows: dict[str, list[list[float]]]


def _export(revision: str, into: Path) -> Path:
    """``revision``'s ``src/`` under ``into``, compiled; a bad revision is one clear line."""
    archive = subprocess.run(
        ["git", "-C", str(REPOSITORY), "archive", revision, "src"],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        sys.exit(f"bench/compare.py: no such revision: {revision}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "0", str(into / "src")], check=True
    )
    return into / "src"


@contextlib.asynccontextmanager
async def _running(backend: str, source: Path) -> AsyncIterator[Service]:
    """A ``wattx up`` importing the service from ``source``."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = str(source)
    try:
        async with live_replicas(backend, 1, **MARKET_ENV) as (service,):
            yield service
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


async def compare(args: argparse.Namespace) -> Comparison:
    with tempfile.TemporaryDirectory() as tmp:
        sides = [
            Side("base", _export(args.base, Path(tmp))),
            Side("new", REPOSITORY / "src"),
        ]
        async with (
            _running(args.backend, sides[0].source) as base,
            _running(args.backend, sides[1].source) as new,
        ):
            services = {"base": base, "new": new}
            people = {}
            bounds = {}
            for name, service in services.items():
                async with httpx.AsyncClient(base_url=service.url, timeout=30) as http:
                    people[name] = await _participants(http, args.clients)
                    bounds[name] = await _bounds(http, people[name][0][1])
            batch = args.batch if args.mode == "batch" else 0
            for index in range(args.rounds):
                for side in sides if index % 2 == 0 else sides[::-1]:
                    service = services[side.name]
                    clients = people[side.name]
                    if args.mode == "batch":
                        clients = clients[: args.batch_clients]
                    cpu_before = service.cpu_seconds()
                    latencies, errors, elapsed = await _run_mode(
                        [service.url],
                        clients,
                        bounds[side.name],
                        args.seconds,
                        None,
                        batch,
                        args.mode == "ceiling",
                    )
                    cpu_s = service.cpu_seconds() - cpu_before
                    done = len(latencies) * max(batch, 1)
                    side.per_second.append(round(done / elapsed, 1))
                    side.cpu_us.append(round(cpu_s * 1e6 / max(1, done), 1))
                    print(
                        f"round {index + 1}/{args.rounds} {side.name:<4} "
                        f"{side.per_second[-1]:>9.1f}/s {side.cpu_us[-1]:>7.1f} µs CPU"
                        + (f" ({len(errors)} errors)" if errors else ""),
                        file=sys.stderr,
                        flush=True,
                    )
    base_side, new_side = sides
    rates = [statistics.median(s.per_second) for s in sides]
    cpus = [statistics.median(s.cpu_us) for s in sides]
    return Comparison(
        backend=args.backend,
        mode=args.mode if args.mode != "batch" else f"batch {args.batch}",
        base=args.base,
        rounds=args.rounds,
        seconds=args.seconds,
        base_per_second=rates[0],
        new_per_second=rates[1],
        base_cpu_us=cpus[0],
        new_cpu_us=cpus[1],
        rate_ratio=round(rates[1] / rates[0], 3),
        cpu_ratio=round(cpus[1] / cpus[0], 3),
        windows={s.name: [s.per_second, s.cpu_us] for s in (base_side, new_side)},
    )


def _table(result: Comparison) -> str:
    return "\n".join(
        [
            f"{result.backend}, {result.mode}: {result.rounds} rounds of {result.seconds:g} s",
            f"{'':<18} {'per second':>11} {'CPU µs/order':>13}",
            f"{'base ' + result.base:<18} {result.base_per_second:>11.1f} "
            f"{result.base_cpu_us:>13.1f}",
            f"{'working tree':<18} {result.new_per_second:>11.1f} {result.new_cpu_us:>13.1f}",
            f"{'new / base':<18} {result.rate_ratio:>11.3f} {result.cpu_ratio:>13.3f}",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--mode", choices=["batch", "max", "ceiling"], default="batch")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=4.0, help="per window")
    parser.add_argument("--batch", type=int, default=1000, help="orders per batch request")
    parser.add_argument("--batch-clients", type=int, default=2, help="clients in batch mode")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds <= 0:
        parser.exit(2, "bench/compare.py: --rounds and --seconds must be positive\n")
    result = uvloop.run(compare(args))
    print(json.dumps(asdict(result), indent=2) if args.json else _table(result))


if __name__ == "__main__":
    main()
