"""A py-spy recording of the benchmarked service process, for ``--profile`` options."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from api import Service

PY_SPY_EXTRA = [a for a in os.environ.get("BENCH_PY_SPY_ARGS", "").split() if a]


def start_profiler(
    service: Service, prefix: str | None
) -> tuple[subprocess.Popen[bytes], Path] | None:
    """``py-spy record`` on the service process into ``{prefix}.txt`` (collapsed stacks,
    200 samples/s, idle samples included) until :func:`stop_profiler`; ``None`` without a
    prefix."""
    if prefix is None:
        return None
    assert service.process is not None
    out = Path(f"{prefix}.txt")
    spy = Path(sys.executable).with_name("py-spy")
    process = subprocess.Popen(
        [
            *(str(spy), "record", "--pid", str(service.process.pid), "--format", "raw"),
            *("--rate", "200", "--nonblocking", *PY_SPY_EXTRA, "--output", str(out)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, out


def stop_profiler(process: subprocess.Popen[bytes], out: Path) -> None:
    """Stop the recording and print the 25 functions with the most own samples."""
    process.send_signal(signal.SIGINT)
    process.wait(timeout=60)
    own: Counter[str] = Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue  # a frame name of generated code may carry its source over lines
        total += int(count)
        own[stack.rpartition(";")[2]] += int(count)
    print(f"py-spy: {total} samples in {out}; most own samples:", file=sys.stderr)
    for frame, count in own.most_common(25):
        print(f"  {100 * count / max(1, total):5.1f}%  {frame}", file=sys.stderr)
