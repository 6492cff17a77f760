"""Coupled call auction benchmark: 20 zones in a tree, one linear program.

Usage: ``python bench/coupling.py [--sizes 100,1000,10000] [--json]``

The grid: a point of common coupling, 3 transformers under it and 16 feeders
under those (20 zones). Every zone gets ``n`` bids and ``n`` asks at random
prices; the feeders' export and import capacities are a fifth of their asks,
so limits bind. For each ``n`` the table shows the time of the whole clearing
(:func:`run_coupled_auction`: building the program, solving it with HiGHS,
pairing the orders and applying fills; wall and process CPU time, which differ
on a shared machine), of the program alone (:func:`solve_program`), the
matches made, how many link directions bind and the congestion rent.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import time
from dataclasses import replace
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from wattx.domain import Order, Side
from wattx.grid import GridLink, GridTree
from wattx.market.coupling import run_coupled_auction, solve_program
from wattx.market.rates import tree_rates

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
TRANSFORMERS = ["t0", "t1", "t2"]
FEEDERS = [f"f{i:02d}" for i in range(16)]
ZONES = ["pcc", *TRANSFORMERS, *FEEDERS]
MEAN_QTY = 500


def grid(per_zone: int) -> GridTree:
    cap = per_zone * MEAN_QTY // 5
    links = [GridLink(t, "pcc") for t in TRANSFORMERS]
    links += [
        GridLink(f, TRANSFORMERS[i % 3], import_wh=cap, export_wh=cap)
        for i, f in enumerate(FEEDERS)
    ]
    return GridTree.build(ZONES, links)


def orders(per_zone: int, rng: random.Random) -> tuple[list[Order], list[Order]]:
    buys: list[Order] = []
    sells: list[Order] = []
    seq = 0
    for k, zone in enumerate(ZONES):
        # Sunny feeders sell cheap, the others buy dear: energy wants to move.
        tilt = 30_000 if k % 2 else -30_000
        for side, centre, out in ((Side.BUY, 160_000, buys), (Side.SELL, 140_000, sells)):
            for _ in range(per_zone):
                seq += 1
                made = Order(
                    id=f"o{seq}",
                    owner=f"u{seq}",
                    side=side,
                    qty_wh=rng.randint(1, 2 * MEAN_QTY),
                    limit_price=max(1_000, int(rng.gauss(centre + tilt, 40_000))),
                    zone=zone,
                    epoch_id=1,
                    created_at=NOW,
                )
                made.seq = seq
                out.append(made)
    return buys, sells


def measure(per_zone: int, repeat: int) -> dict[str, float | int]:
    rng = random.Random(per_zone)
    tree = grid(per_zone)
    table = tree_rates(tree)
    buys, sells = orders(per_zone, rng)
    best_total = best_program = best_cpu = best_program_cpu = float("inf")
    clearing = None
    for _ in range(repeat):
        fresh_buys, fresh_sells = [replace(o) for o in buys], [replace(o) for o in sells]
        gc.collect()
        start, cpu = time.perf_counter(), time.process_time()
        solve_program(fresh_buys, fresh_sells, tree, table, tree.paths())  # type: ignore[arg-type]
        best_program = min(best_program, time.perf_counter() - start)
        best_program_cpu = min(best_program_cpu, time.process_time() - cpu)
        start, cpu = time.perf_counter(), time.process_time()
        clearing = run_coupled_auction(fresh_buys, fresh_sells, tree, table)  # type: ignore[arg-type]
        best_total = min(best_total, time.perf_counter() - start)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    assert clearing is not None
    return {
        "orders_per_zone_per_side": per_zone,
        "orders": 2 * per_zone * len(ZONES),
        "clear_s": round(best_total, 4),
        "clear_cpu_s": round(best_cpu, 4),
        "program_s": round(best_program, 4),
        "program_cpu_s": round(best_program_cpu, 4),
        "matches": len(clearing.matches),
        "binding_links": sum(1 for r in clearing.links if r.binding),
        "rent": clearing.rent,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000,10000", help="orders per zone and side")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    rows = [measure(int(n), args.repeat) for n in args.sizes.split(",")]
    if args.json:
        print(json.dumps({"coupling": rows}, indent=2))
        return
    table = Table(title="Coupled call auction, 20 zones (best of runs)")
    for column in rows[0]:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(f"{value:,}" for value in row.values()))
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
