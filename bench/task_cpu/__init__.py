"""``--task-cpu``: the service's CPU by asyncio task (see ``sitecustomize.py`` here)."""

from __future__ import annotations

import json
import os
from pathlib import Path

HERE = Path(__file__).resolve().parent

TaskCpu = tuple[float, dict[str, float]]
"""The process's CPU seconds and each task name's, as counted so far."""


def task_cpu_env(out: Path) -> dict[str, str]:
    """The environment that has a service count its CPU by task into ``out``."""
    out.unlink(missing_ok=True)
    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "BENCH_TASK_CPU": str(out.resolve())}


def read_task_cpu(out: Path) -> TaskCpu:
    """The totals the service keeps in ``out`` (zero before it first wrote them)."""
    if not out.exists():
        return 0.0, {}
    snapshot = json.loads(out.read_text())
    return float(snapshot["process_cpu_s"]), dict(snapshot["tasks"])


def task_cpu_table(before: TaskCpu, after: TaskCpu, submissions: int, top: int = 6) -> str:
    """Each busiest task's share of the process's CPU between two readings, and its CPU
    per submission; the rest is what ran outside tasks (the loop's own callbacks)."""
    process = max(after[0] - before[0], 1e-9)
    spent = {name: cpu - before[1].get(name, 0.0) for name, cpu in after[1].items()}
    busiest = sorted(spent.items(), key=lambda item: -item[1])[:top]
    lines = [f"  task CPU: {process:.2f} s of the process's, {submissions} submissions"]
    for name, cpu in [*busiest, ("(outside tasks)", process - sum(spent.values()))]:
        per = 1e6 * cpu / max(submissions, 1)
        lines.append(f"  {100 * cpu / process:5.1f}%  {per:8.1f} µs/sub  {name}")
    return "\n".join(lines)
