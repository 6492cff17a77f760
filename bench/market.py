"""Market benchmarks: continuous book throughput and latency, call-auction clearing time.

Usage: ``python bench/market.py [--events N] [--json]``

Continuous book: a stream of ``N`` events (default 1,000,000), 80 % limit
submissions at random prices around a common mid (so that about half of them
cross) and 20 % cancels of earlier orders, one zone, one epoch. It is run
twice: through the per-book class the engine uses on its single-book hot path
(:class:`ContinuousBook`, with the engine's same-zone rate and status
bookkeeping, no trade records), and through the ``MarketEngine`` facade
(validation, sequence numbers, trade records with fees). Latency of one
submission (p50, p99) is measured in a separate pass so that reading the
clock does not slow the throughput pass.

Call auction: clearing time of ``clear_call_auction_arrays`` for 1,000,
100,000 and 1,000,000 orders per side, and of the object version where it is
practical.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
from rich.console import Console
from rich.table import Table

from wattx.domain import Order, OrderStatus, Side, Tariff, Zone
from wattx.market import (
    ContinuousBook,
    MarketConfig,
    MarketEngine,
    ZoneRateTable,
    clear_call_auction,
    clear_call_auction_arrays,
)

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
MID = 150_000
TICK = 200
SPREAD_TICKS = 25
# Buyers' limits are landed (same-zone wheeling 5,000 and 1 % loss on top of the
# seller's price), so buys centre higher to cross about as often as they rest.
BUY_CENTRE = MID + 8_000
SELL_CENTRE = MID - 2_000
ZONE = Zone("z", "bench", tariff=Tariff.flat(0, 1_000_000))
CONFIG = MarketConfig(zones={"z": ZONE})
EPOCH = CONFIG.schedule.first_open_epoch(NOW)

Event = tuple[bool, Order | None, int]
"""``(is_cancel, order to submit, random index of the order to cancel)``."""


def make_stream(events: int, seed: int) -> list[Event]:
    rng = random.Random(seed)
    stream: list[Event] = []
    for i in range(events):
        if rng.random() < 0.2:
            stream.append((True, None, rng.getrandbits(40)))
            continue
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        offset = rng.randint(-SPREAD_TICKS, SPREAD_TICKS) * TICK
        price = (BUY_CENTRE if side is Side.BUY else SELL_CENTRE) + offset
        order = Order(
            id=f"o{i}",
            owner=f"u{rng.randrange(1000)}",
            side=side,
            qty_wh=rng.randint(100, 5_000),
            limit_price=price,
            zone="z",
            epoch_id=EPOCH,
        )
        stream.append((False, order, 0))
    return stream


def run_book(stream: list[Event]) -> tuple[float, int]:
    """The engine's single-book path: match, update status, rest or cancel."""
    book = ContinuousBook("z", EPOCH)
    rate = ZoneRateTable().rate(ZONE, ZONE)
    submitted: list[Order] = []
    trades = 0
    fills: list[tuple[Order, int, int, int]] = []
    started = time.perf_counter()
    for is_cancel, order, pick in stream:
        if is_cancel:
            if submitted:
                target = submitted[pick % len(submitted)]
                if (
                    target.status is OrderStatus.OPEN
                    or target.status is OrderStatus.PARTIALLY_FILLED
                ):
                    book.cancel(target)
            continue
        assert order is not None
        if order.side is Side.BUY:
            remaining, self_trade = book.match_buy(
                order.owner, order.qty_wh, rate.seller_cap(order.limit_price), rate, fills
            )
        else:
            remaining, self_trade = book.match_sell(
                order.owner, order.qty_wh, rate.buy_threshold(order.limit_price), rate, fills
            )
        order.filled_wh = order.qty_wh - remaining
        if not remaining:
            order.status = OrderStatus.FILLED
        elif self_trade:
            order.cancelled_wh = remaining
            order.status = OrderStatus.CANCELLED
        else:
            order.status = OrderStatus.PARTIALLY_FILLED if order.filled_wh else OrderStatus.OPEN
            book.rest(order)
        trades += len(fills)
        fills.clear()
        submitted.append(order)
    return time.perf_counter() - started, trades


def run_engine(stream: list[Event]) -> tuple[float, int]:
    """The facade: ``MarketEngine.submit`` and ``cancel``."""
    counter = iter(range(1 << 62))
    engine = MarketEngine(CONFIG, id_factory=lambda: str(next(counter)))
    submitted: list[Order] = []
    trades = 0
    started = time.perf_counter()
    for is_cancel, order, pick in stream:
        if is_cancel:
            if submitted:
                target = submitted[pick % len(submitted)]
                if (
                    target.status is OrderStatus.OPEN
                    or target.status is OrderStatus.PARTIALLY_FILLED
                ):
                    engine.cancel(target.id)
            continue
        assert order is not None
        trades += len(engine.submit(order, NOW).trades)
        submitted.append(order)
    return time.perf_counter() - started, trades


def submit_latencies(stream: list[Event], use_engine: bool) -> list[int]:
    counter = iter(range(1 << 62))
    engine = MarketEngine(CONFIG, id_factory=lambda: str(next(counter)))
    book = ContinuousBook("z", EPOCH)
    rate = ZoneRateTable().rate(ZONE, ZONE)
    fills: list[tuple[Order, int, int, int]] = []
    clock = time.perf_counter_ns
    samples: list[int] = []
    for is_cancel, order, _ in stream:
        if is_cancel or order is None:
            continue
        if use_engine:
            t0 = clock()
            engine.submit(order, NOW)
            samples.append(clock() - t0)
            continue
        t0 = clock()
        if order.side is Side.BUY:
            remaining, self_trade = book.match_buy(
                order.owner, order.qty_wh, rate.seller_cap(order.limit_price), rate, fills
            )
        else:
            remaining, self_trade = book.match_sell(
                order.owner, order.qty_wh, rate.buy_threshold(order.limit_price), rate, fills
            )
        order.filled_wh = order.qty_wh - remaining
        if remaining and not self_trade:
            book.rest(order)
        samples.append(clock() - t0)
        fills.clear()
    return samples


def percentile(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1_000


def timed(fn: Callable[[], object]) -> float:
    gc.collect()
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_auction(sizes: list[int], seed: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    rng = np.random.default_rng(seed)
    for n in sizes:
        bp = rng.integers(60_000, 300_001, n, dtype=np.int64)
        ap = rng.integers(60_000, 300_001, n, dtype=np.int64)
        bq = rng.integers(100, 10_001, n, dtype=np.int64)
        aq = rng.integers(100, 10_001, n, dtype=np.int64)
        result = clear_call_auction_arrays(bp, bq, ap, aq)
        array_s = min(
            timed(lambda bp=bp, bq=bq, ap=ap, aq=aq: clear_call_auction_arrays(bp, bq, ap, aq))
            for _ in range(3)
        )
        object_s: float | None = None
        if n <= 100_000:
            bids = list(zip(bp.tolist(), bq.tolist(), strict=True))
            asks = list(zip(ap.tolist(), aq.tolist(), strict=True))
            object_s = timed(lambda bids=bids, asks=asks: clear_call_auction(bids, asks))
        rows.append(
            {
                "orders_per_side": n,
                "array_seconds": round(array_s, 4),
                "object_seconds": None if object_s is None else round(object_s, 4),
                "price": result.price,
                "volume_wh": result.volume,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--latency-submissions", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args()

    continuous: list[dict[str, object]] = []
    for name, runner, use_engine in (
        ("ContinuousBook (per-book hot path)", run_book, False),
        ("MarketEngine.submit/cancel (facade)", run_engine, True),
    ):
        stream = make_stream(args.events, args.seed)
        gc.collect()
        gc.disable()
        seconds, trades = runner(stream)
        gc.enable()
        latency_stream = make_stream(args.latency_submissions, args.seed + 1)
        gc.collect()
        samples = submit_latencies(latency_stream, use_engine)
        continuous.append(
            {
                "path": name,
                "events": args.events,
                "trades": trades,
                "seconds": round(seconds, 3),
                "events_per_second": int(args.events / seconds),
                "submit_p50_us": round(percentile(samples, 0.50), 2),
                "submit_p99_us": round(percentile(samples, 0.99), 2),
                "submit_mean_us": round(statistics.fmean(samples) / 1_000, 2),
            }
        )
    auction = bench_auction([1_000, 100_000, 1_000_000], args.seed)

    if args.json:
        print(json.dumps({"continuous": continuous, "call_auction": auction}, indent=2))
        return
    console = Console()
    table = Table(title=f"Continuous book: {args.events:,} events, 20 % cancels")
    for column in ("path", "events/s", "trades", "seconds", "p50 µs", "p99 µs"):
        table.add_column(column, justify="left" if column == "path" else "right")
    for row in continuous:
        table.add_row(
            str(row["path"]),
            f"{row['events_per_second']:,}",
            f"{row['trades']:,}",
            str(row["seconds"]),
            str(row["submit_p50_us"]),
            str(row["submit_p99_us"]),
        )
    console.print(table)
    table = Table(title="Call auction clearing")
    for column in ("orders/side", "array s", "object s", "price", "volume Wh"):
        table.add_column(column, justify="right")
    for row in auction:
        table.add_row(
            f"{row['orders_per_side']:,}",
            str(row["array_seconds"]),
            "-" if row["object_seconds"] is None else str(row["object_seconds"]),
            str(row["price"]),
            f"{row['volume_wh']:,}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
