"""Throughput of the metering core: signature checks and validation of reading batches.

For batches of 1, 10 and 100 readings of one meter, measures

- ``verify``: the Ed25519 check of already parsed batches
  (:func:`wattx.metering.verify_batch_signature`), and
- ``ingest``: what ingestion does before storage: parse the JSON text,
  validate (signature included) against the meter's chain, and digest the
  accepted readings for duplicate detection.

Usage: ``.venv/bin/python bench/metering.py [--readings N] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from wattx.metering import (
    MeterInfo,
    MeterSigner,
    Reading,
    ReadingBatch,
    decode_reading_batch,
    encode_reading_batch,
    validate_batch,
    verify_batch_signature,
)

BATCH_SIZES = (1, 10, 100)
SEED = bytes(range(32))
START = datetime(2025, 6, 1, 0, 0, 0, tzinfo=UTC)
READING_INTERVAL = timedelta(seconds=10)


@dataclass(frozen=True)
class Row:
    stage: str
    batch_size: int
    batches: int
    seconds: float
    batches_per_s: float
    readings_per_s: float


def _make_batches(
    signer: MeterSigner, batch_size: int, total_readings: int
) -> tuple[list[ReadingBatch], datetime]:
    batches = []
    ts = START
    for _ in range(max(1, total_readings // batch_size)):
        readings: list[Reading] = []
        for _ in range(batch_size):
            readings.append(
                signer.record(
                    ts,
                    imported_wh=1,
                    exported_wh=5,
                    power_w=-1_800,
                    voltage_mv=231_000,
                    frequency_millihz=50_010,
                )
            )
            ts += READING_INTERVAL
        batches.append(signer.sign(readings))
    return batches, ts


def _timed(stage: str, batch_size: int, batches: int, run: Callable[[], None]) -> Row:
    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    return Row(
        stage=stage,
        batch_size=batch_size,
        batches=batches,
        seconds=round(seconds, 4),
        batches_per_s=round(batches / seconds, 1),
        readings_per_s=round(batches * batch_size / seconds, 1),
    )


def measure(batch_size: int, total_readings: int) -> list[Row]:
    signer = MeterSigner("bench-meter", SEED)
    meter = MeterInfo("bench-meter", "owner", "zone", True, 5_000, signer.public_key)
    batches, now = _make_batches(signer, batch_size, total_readings)
    texts = [encode_reading_batch(batch) for batch in batches]

    def verify_all() -> None:
        for batch in batches:
            verify_batch_signature(batch, meter.public_key)

    def ingest_all() -> None:
        last: Reading | None = None
        stored: dict[int, bytes] = {}
        for text in texts:
            verdict = validate_batch(
                decode_reading_batch(text),
                meter=meter,
                last_reading=last,
                stored_digests=stored,
                now=now,
            )
            stored.update(verdict.digests)
            last = verdict.last_reading
        if len(stored) != len(batches) * batch_size:
            raise RuntimeError("the benchmark chain was not accepted in full")

    return [
        _timed("verify", batch_size, len(batches), verify_all),
        _timed("ingest", batch_size, len(batches), ingest_all),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--readings", type=int, default=20_000, help="readings per batch size (default 20000)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    rows = [row for size in BATCH_SIZES for row in measure(size, args.readings)]
    if args.json:
        print(json.dumps([asdict(row) for row in rows], indent=2))
        return
    header = (
        f"{'stage':<8}{'batch':>7}{'batches':>10}{'seconds':>10}{'batches/s':>12}{'readings/s':>13}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.stage:<8}{row.batch_size:>7}{row.batches:>10}{row.seconds:>10.3f}"
            f"{row.batches_per_s:>12,.0f}{row.readings_per_s:>13,.0f}"
        )


if __name__ == "__main__":
    main()
