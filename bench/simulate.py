"""Throughput of ``wattx simulate``: the community trading through the in-process service.

For each community size, builds the scenario, then runs the call auction on a
fresh in-process service (scratch SQLite, virtual clock) over HTTP (ASGI):
enrolment, every agent's orders, gate closures, trades, and every meter's
signed reading each epoch (through the data concentrator's
``POST /readings/batch`` unless ``--transport per_meter``). Reports simulated
household-days per wall second (households counted without the school and the
community battery); the wall time includes the service's start-up (contract
deployment on the embedded chain) but not building the scenario. ``cpu_s`` is
the process's CPU time (every thread: the runner, the service, SQLite, the
chain), the figure a busy machine moves least. ``setup_*`` runs until the first
epoch is delivered (start-up, enrolment, the first quotes); ``*_per_day`` is
the epoch loop after it, per simulated day, so a longer run costs about
``setup + days × per_day``. Usage::

    .venv/bin/python bench/simulate.py [--json] [--households 10 100] [--days 1]
        [--transport concentrator|per_meter]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import date

from wattx.domain.epochs import EpochSchedule
from wattx.sim.community import CommunityMix, draw_community
from wattx.sim.runner.faults import FaultPlan
from wattx.sim.runner.meters import ReadingTransport
from wattx.sim.runner.run import run_in_process
from wattx.sim.scenario import build_scenario
from wattx.sim.strategies import StrategyName
from wattx.sim.timegrid import TimeGrid


def measure(
    households: int, days: int, transport: ReadingTransport
) -> dict[str, float | int | str]:
    grid = TimeGrid.for_days(date(2026, 6, 1), days, EpochSchedule())
    scenario = build_scenario(draw_community(CommunityMix(households), seed=1), grid)
    delivered: list[tuple[float, float]] = []  # (wall, CPU) when each epoch was delivered

    def progress(_epochs: int) -> None:
        delivered.append((time.perf_counter(), time.process_time()))

    started, started_cpu = time.perf_counter(), time.process_time()
    run = asyncio.run(
        run_in_process(
            scenario,
            "call_auction",
            StrategyName.ZERO_INTELLIGENCE,
            progress=progress,
            faults=FaultPlan(),
            transport=transport,
        )
    )
    wall_s = time.perf_counter() - started
    cpu_s = time.process_time() - started_cpu
    orders = sum(run.answers.orders.values())
    readings = run.readings.readings_accepted if run.readings is not None else 0
    # The loop's cost per epoch, from the first epoch delivered to the last (set-up,
    # enrolment and the first epoch's quotes come before the first).
    loop_epochs = max(len(delivered) - 1, 1)
    (first_wall, first_cpu), (last_wall, last_cpu) = delivered[0], delivered[-1]
    epochs_per_day = grid.steps // days
    return {
        "households": households,
        "days": days,
        "transport": transport.value,
        "epochs": grid.steps,
        "orders": orders,
        "readings": readings,
        "settled": run.settlement.settled if run.settlement is not None else 0,
        "wall_s": round(wall_s, 2),
        "cpu_s": round(cpu_s, 2),
        "setup_wall_s": round(first_wall - started, 2),
        "setup_cpu_s": round(first_cpu - started_cpu, 2),
        "wall_s_per_day": round((last_wall - first_wall) / loop_epochs * epochs_per_day, 1),
        "cpu_s_per_day": round((last_cpu - first_cpu) / loop_epochs * epochs_per_day, 1),
        "household_days_per_s": round(households * days / wall_s, 3),
        "orders_and_readings_per_s": round((orders + readings) / wall_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--households", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument(
        "--transport",
        choices=[t.value for t in ReadingTransport],
        default=ReadingTransport.CONCENTRATOR.value,
    )
    args = parser.parse_args()
    transport = ReadingTransport(args.transport)
    rows = [measure(n, args.days, transport) for n in args.households]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    header = (
        "households",
        "days",
        "transport",
        "epochs",
        "orders",
        "readings",
        "settled",
        "wall_s",
        "cpu_s",
        "setup_wall_s",
        "setup_cpu_s",
        "wall_s_per_day",
        "cpu_s_per_day",
        "household_days_per_s",
        "orders_and_readings_per_s",
    )
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(f"{row[h]!s:>{len(h)}}" for h in header))


if __name__ == "__main__":
    main()
