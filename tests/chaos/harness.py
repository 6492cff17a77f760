"""``bench/chaos.py`` loaded as a module, and one run of it checked as the tests want it."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

BENCH = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("wattx_bench_chaos", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


chaos = _load()


def run_and_check(
    tmp_path: Path, backend: str, kinds: tuple[str, ...], seed: int, **config: Any
) -> Any:
    """Run the suite with these faults, in this order of kinds (shuffled by the seed).

    Fails on any invariant violation, on a fault the service does not survive, on a
    fault that could not be injected (never a skip), or when the run cannot go on;
    the message is the suite's table. Returns the report.
    """
    settings: dict[str, Any] = {"outage_s": (5.0, 8.0), **config}
    cfg = chaos.ChaosConfig(
        backend=backend, runs=len(kinds), seed=seed, kinds=kinds, workdir=tmp_path, **settings
    )
    report = asyncio.run(chaos.run_chaos(cfg))
    shown = "\n" + chaos.table([report])
    assert report.ok, shown
    assert sorted(f.kind for f in report.faults) == sorted(kinds), shown
    assert not [f for f in report.faults if f.skipped], shown
    # A check after every fault and one at the end, each with settled epochs to look at.
    assert report.checks == len(kinds) + 1, shown
    assert report.epochs_settled > 0, shown
    return report
