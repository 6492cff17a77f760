"""Restart of the durable embedded chain: from its newest checkpoint against a replay of
the whole journal.

For each journal length, a chain in a new data directory mints to 20 participants that
many times (what the service journals), then is opened again as a restart would: from
its files as they are (the newest checkpoint and the journal's tail), and from a copy
without the checkpoint files (the whole journal replayed, as before checkpoints).

    .venv/bin/python bench/chain_restart.py                          # table
    .venv/bin/python bench/chain_restart.py --transactions 1000,20000
    .venv/bin/python bench/chain_restart.py --json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from wattx.services.onchain.chain_checkpoint import CHECKPOINT_FILE, RECEIPTS_FILE
from wattx.services.onchain.embedded_journal import JOURNAL_FILE, open_durable_embedded_chain
from wattx.settlement.keys import new_signer
from wattx.settlement.port import ParticipantRole

PARTICIPANTS = 20


@dataclass(frozen=True, slots=True)
class Result:
    transactions: int
    write_cpu_ms_per_tx: float
    restart_from_checkpoint_s: float
    restart_from_checkpoint_cpu_s: float
    whole_replay_s: float
    whole_replay_cpu_s: float
    journal_bytes: int
    checkpoint_bytes: int
    receipts_bytes: int


def _timed(run: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(transactions: int, work: Path) -> Result:
    data = work / f"chain-{transactions}"
    chain = open_durable_embedded_chain(data, None)
    participants = [new_signer() for _ in range(PARTICIPANTS)]
    for participant in participants:
        chain.admit_participant(participant.address, ParticipantRole.CONSUMER)
    cpu = time.process_time()
    for i in range(transactions):
        chain.mint_credit(participants[i % PARTICIPANTS].address, 1_000 + i)
        if (i + 1) % 1_000 == 0:
            print(f"  {i + 1:,} of {transactions:,} transactions", file=sys.stderr)
    write_cpu = time.process_time() - cpu
    whole = work / f"whole-{transactions}"
    shutil.copytree(data, whole)
    for name in (CHECKPOINT_FILE, RECEIPTS_FILE):
        (whole / name).unlink(missing_ok=True)
    checkpoint_wall, checkpoint_cpu = _timed(lambda: open_durable_embedded_chain(data, None))
    # The copy's restart writes a checkpoint of its own: time the replay, not that.
    replay_wall, replay_cpu = _timed(lambda: open_durable_embedded_chain(whole, None))

    def size(name: str) -> int:
        path = data / name
        return path.stat().st_size if path.exists() else 0

    return Result(
        transactions=transactions,
        write_cpu_ms_per_tx=round(1_000 * write_cpu / transactions, 3),
        restart_from_checkpoint_s=round(checkpoint_wall, 3),
        restart_from_checkpoint_cpu_s=round(checkpoint_cpu, 3),
        whole_replay_s=round(replay_wall, 3),
        whole_replay_cpu_s=round(replay_cpu, 3),
        journal_bytes=size(JOURNAL_FILE),
        checkpoint_bytes=size(CHECKPOINT_FILE),
        receipts_bytes=size(RECEIPTS_FILE),
    )


def _table(results: list[Result]) -> str:
    lines = [
        f"{'txs':>7} {'write ms/tx':>11} {'checkpoint s':>12} {'whole s':>8} "
        f"{'journal':>10} {'checkpoint':>10} {'receipts':>10}",
        "-" * 75,
    ]
    for r in results:
        lines.append(
            f"{r.transactions:>7,} {r.write_cpu_ms_per_tx:>11.3f} "
            f"{r.restart_from_checkpoint_s:>12.3f} {r.whole_replay_s:>8.3f} "
            f"{r.journal_bytes:>10,} {r.checkpoint_bytes:>10,} {r.receipts_bytes:>10,}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--transactions", default="1000,5000", help="comma-separated journal lengths"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    try:
        counts = [int(part) for part in args.transactions.split(",")]
    except ValueError:
        parser.error(f"--transactions takes whole numbers, not {args.transactions!r}")
    if any(count < 1 for count in counts):
        parser.error("--transactions takes numbers of at least 1")
    results = []
    with tempfile.TemporaryDirectory(prefix="wattx-chain-restart-") as work:
        for count in counts:
            print(f"{count:,} transactions", file=sys.stderr)
            results.append(measure(count, Path(work)))
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
    else:
        print(_table(results))


if __name__ == "__main__":
    main()
