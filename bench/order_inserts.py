"""What inserting orders costs SQLite as the orders table grows, by kind of id and page cache.

The market writer adds a batch's orders with one multi-row ``INSERT`` in one transaction.
Each row goes into the table and into every index of ``orders``: its primary key, its
owner's orders (``owner_id, created_at``), its client ids, its status and epoch. A key
drawn at random lands on any page of its index, so once an index outgrows the page cache
nearly every row reads a page back and dirties one for the WAL. This benchmark fills a
fresh database file with the real schema (``wattx.store.models``) and the writer's own
pragmas (``wattx.store.db``), ``--batch`` orders per transaction up to ``--rows``, for
each combination of:

* ids: ``random`` (version-4 UUIDs, ``new_id``) or ``time`` (version-7, time-ordered,
  ``new_time_ordered_id``: what orders and trades use);
* cache: ``default`` (SQLite's 2 MiB) or ``writer`` (the writer connection's ``cache_size``);

and ``--owners`` participants placing them. It prints, over the last tenth of the
batches (the table at its largest), the microseconds per order of the ``INSERT`` and of
the ``COMMIT``, and the WAL written per batch.

    .venv/bin/python bench/order_inserts.py
    .venv/bin/python bench/order_inserts.py --rows 1000000 --owners 50,20000 --json
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import create_engine

from wattx.domain.ids import new_id, new_time_ordered_id
from wattx.store.db import SQLITE_PRAGMAS, SQLITE_WRITER_PRAGMAS
from wattx.store.models import Base, OrderRow

_IDS: dict[str, Callable[[], str]] = {"random": new_id, "time": new_time_ordered_id}
_CACHE_PRAGMA = "PRAGMA cache_size"


def _pragmas(cache: str) -> list[str]:
    pragmas = [*SQLITE_PRAGMAS, *SQLITE_WRITER_PRAGMAS]
    if cache == "default":
        pragmas = [p for p in pragmas if not p.startswith(_CACHE_PRAGMA)]
    return pragmas


def measure(
    ids: str, cache: str, owners: int, rows: int, batch: int, progress: Progress
) -> dict[str, object]:
    table = Base.metadata.tables[OrderRow.__tablename__]
    columns = [column.name for column in table.columns]
    insert = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    )
    rng = random.Random(7)
    people = [new_id() for _ in range(owners)]
    new_key = _IDS[ids]
    start = datetime(2026, 12, 1, tzinfo=UTC)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "orders.db"
        engine = create_engine(f"sqlite:///{path}")
        Base.metadata.create_all(engine, tables=[table])
        engine.dispose()
        db = sqlite3.connect(path, isolation_level=None)
        for pragma in _pragmas(cache):
            db.execute(pragma)
        frame = db.execute("PRAGMA page_size").fetchone()[0] + 24  # a WAL frame's header
        batches = rows // batch
        tail: list[tuple[float, float, int]] = []
        task = progress.add_task(f"{ids} ids, {cache} cache, {owners:,} owners", total=batches)
        seq = 0
        for number in range(batches):
            records = []
            for _ in range(batch):
                seq += 1
                at = (start + timedelta(milliseconds=seq)).isoformat(sep=" ")
                side = rng.choice(("buy", "sell"))
                records.append(
                    {
                        "id": new_key(),
                        "owner_id": rng.choice(people),
                        "side": side,
                        "kind": "limit",
                        "zone": "main",
                        "epoch_id": 1_978_080 + seq // 20_000,
                        "qty_wh": rng.randint(100, 5_000),
                        "limit_price": rng.randint(80_000, 120_000),
                        "client_order_id": None,
                        "created_at": at,
                        "updated_at": at,
                        "seq": seq,
                        "filled_wh": 0,
                        "cancelled_wh": 0,
                        "status": "open",
                        "escrow_asset": "credit" if side == "buy" else "energy",
                        "escrow_remaining": rng.randint(1, 10**9),
                    }
                )
            values = [tuple(record[name] for name in columns) for record in records]
            began = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            db.executemany(insert, values)
            inserted = time.perf_counter()
            db.execute("COMMIT")
            committed = time.perf_counter()
            # Untimed, as the service's checkpoint task runs beside the writer; here after
            # every batch, so that the WAL holds this batch's frames alone.
            _, frames, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if number >= batches - max(1, batches // 10):
                tail.append((inserted - began, committed - inserted, frames * frame))
            progress.advance(task)
        db.close()
    return {
        "ids": ids,
        "cache": cache,
        "owners": owners,
        "rows": batches * batch,
        "insert_us_per_order": round(statistics.mean(t[0] for t in tail) / batch * 1e6, 2),
        "commit_us_per_order": round(statistics.mean(t[1] for t in tail) / batch * 1e6, 2),
        "wal_mb_per_batch": round(statistics.mean(t[2] for t in tail) / 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000, help="orders in the table at the end")
    parser.add_argument("--batch", type=int, default=1_000, help="orders per transaction")
    parser.add_argument("--owners", default="50,20000", help="comma-separated counts of owners")
    parser.add_argument("--ids", default="random,time", help="comma-separated: random, time")
    parser.add_argument(
        "--cache", default="default,writer", help="comma-separated: default, writer"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    try:
        owners = [int(count) for count in args.owners.split(",")]
    except ValueError:
        parser.error("--owners: comma-separated whole numbers")
    ids, caches = args.ids.split(","), args.cache.split(",")
    if unknown := set(ids) - set(_IDS):
        parser.error(f"--ids: unknown {', '.join(sorted(unknown))} (random, time)")
    if unknown := set(caches) - {"default", "writer"}:
        parser.error(f"--cache: unknown {', '.join(sorted(unknown))} (default, writer)")
    if args.rows < args.batch or args.batch < 1 or min(owners) < 1:
        parser.error("--rows must be at least --batch, and --batch and --owners at least 1")
    console = Console(stderr=True)
    with Progress(console=console, transient=True) as progress:
        results = [
            measure(kind, cache, count, args.rows, args.batch, progress)
            for count, kind, cache in itertools.product(owners, ids, caches)
        ]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    table = Table(title=f"{args.rows:,} orders, {args.batch:,} a transaction (last tenth)")
    for header in ("owners", "ids", "cache", "insert µs/order", "commit µs/order", "WAL MB/batch"):
        table.add_column(header, justify="right")
    for r in results:
        table.add_row(
            f"{r['owners']:,}",
            str(r["ids"]),
            str(r["cache"]),
            f"{r['insert_us_per_order']:.1f}",
            f"{r['commit_us_per_order']:.1f}",
            f"{r['wal_mb_per_batch']:.1f}",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
