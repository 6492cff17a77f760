"""Throughput of the community model without any market service.

For 10, 100 and 1,000 households over 7 days of 15-minute epochs, measures:
building the scenario (weather, PV, loads, EVs, forecasts), a grid-only run,
a run in which every agent quotes every epoch (order intents plus delivery), and
the KPIs with the energy-balance check. Reports simulated household-days per
wall second. Usage::

    .venv/bin/python bench/sim_community.py [--json] [--households 10 100 1000] [--days 7]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import date

from wattx.domain.epochs import EpochSchedule
from wattx.sim.community import CommunityMix, draw_community
from wattx.sim.kpis import compute_kpis
from wattx.sim.scenario import build_scenario
from wattx.sim.simulation import CommunitySimulation, run_grid_only
from wattx.sim.strategies import StrategyName
from wattx.sim.timegrid import TimeGrid


def measure(households: int, days: int) -> dict[str, float | int]:
    grid = TimeGrid.for_days(date(2026, 6, 1), days, EpochSchedule())
    started = time.perf_counter()
    scenario = build_scenario(draw_community(CommunityMix(households), seed=1), grid)
    built = time.perf_counter()
    baseline = run_grid_only(scenario)
    baseline_done = time.perf_counter()
    simulation = CommunitySimulation(scenario, StrategyName.RAMPING, "quotes_only")
    intents = 0
    for index in range(grid.steps):
        intents += len(simulation.order_intents(index))
        simulation.deliver(index)
    quoted = time.perf_counter()
    compute_kpis(simulation.results, baseline)
    finished = time.perf_counter()
    household_days = households * days
    return {
        "households": households,
        "days": days,
        "intents": intents,
        "scenario_s": round(built - started, 3),
        "grid_only_s": round(baseline_done - built, 3),
        "quoting_run_s": round(quoted - baseline_done, 3),
        "kpis_s": round(finished - quoted, 3),
        "total_s": round(finished - started, 3),
        "household_days_per_s": round(household_days / (finished - started), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--households", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args()
    rows = [measure(n, args.days) for n in args.households]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    columns = list(rows[0])
    print(" | ".join(f"{c:>20}" for c in columns))
    for row in rows:
        print(" | ".join(f"{row[c]!s:>20}" for c in columns))


if __name__ == "__main__":
    main()
