"""Battery scheduling benchmarks: the day-ahead LP and the pairing scheduler.

Usage: ``python bench/schedule.py [--runs N] [--batteries N] [--json]``

Day-ahead: one household battery (10 kWh, 2 kWh reserve, 5 kW, 95 % each way)
over 96 quarter-hours of a summer day (PV peaking at 8 kW, an evening load peak,
peak and off-peak import prices), solved ``N`` times (default 20) end to end:
building the LP, HiGHS, rounding to whole Wh. Prints the median and the worst
solve. Target: under 100 ms.

Pairing: one slot for a zone of ``--batteries`` batteries (default 3,000) with
random states of charge.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import time

from rich.console import Console
from rich.table import Table

from wattx.devices.scheduling.dayahead import BatterySpec, Forecast, schedule_day_ahead
from wattx.devices.scheduling.pairing import Battery, pair_batteries


def summer_day() -> Forecast:
    pv = [int(2_000 * math.sin(math.pi * (t - 24) / 48)) if 24 <= t < 72 else 0 for t in range(96)]
    load = [250 + (700 if 68 <= t < 88 else 0) for t in range(96)]
    import_price = [320_000 if 68 <= t < 88 else 180_000 for t in range(96)]
    return Forecast(pv, load, import_price, [70_000] * 96)


def bench_day_ahead(runs: int) -> dict[str, float]:
    forecast = summer_day()
    battery = BatterySpec(10_000, 2_000, 5_000)
    schedule_day_ahead(forecast, battery, 2_000)  # warm the imports
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        schedule_day_ahead(forecast, battery, 2_000)
        times.append((time.perf_counter() - t0) * 1000)
    return {"slots": 96, "runs": runs, "median_ms": statistics.median(times), "max_ms": max(times)}


def bench_pairing(count: int, runs: int) -> dict[str, float]:
    rng = random.Random(7)
    zone = []
    for k in range(count):
        capacity = rng.choice([5_000, 10_000, 13_500, 100_000])
        soc = rng.randint(0, capacity)
        zone.append(Battery(f"b{k}", soc, capacity, capacity // 10, rng.choice([3_000, 5_000])))
    times = []
    transfers = 0
    for _ in range(runs):
        t0 = time.perf_counter()
        transfers = len(pair_batteries(zone))
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "batteries": count,
        "transfers": transfers,
        "runs": runs,
        "median_ms": statistics.median(times),
        "max_ms": max(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="solves to time")
    parser.add_argument("--batteries", type=int, default=3_000, help="batteries in the zone")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args()
    if args.runs < 1 or args.batteries < 1:
        parser.error("--runs and --batteries must be at least 1")
    day_ahead = bench_day_ahead(args.runs)
    pairing = bench_pairing(args.batteries, args.runs)
    if args.json:
        print(json.dumps({"day_ahead": day_ahead, "pairing": pairing}, indent=2))
        return
    table = Table(title="Battery scheduling")
    for column in ("benchmark", "size", "median ms", "max ms"):
        table.add_column(column)
    table.add_row(
        "day-ahead LP (target < 100 ms)",
        "96 slots",
        f"{day_ahead['median_ms']:.1f}",
        f"{day_ahead['max_ms']:.1f}",
    )
    table.add_row(
        "pairing, one slot",
        f"{pairing['batteries']} batteries, {pairing['transfers']} transfers",
        f"{pairing['median_ms']:.1f}",
        f"{pairing['max_ms']:.1f}",
    )
    Console().print(table)


if __name__ == "__main__":
    main()
