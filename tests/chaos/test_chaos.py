"""The chaos suite's short run (``bench/chaos.py`` with a few faults per backend).

Real processes: ``wattx up``, a private ``redis-server``, and per backend SQLite
with the embedded chain or a private PostgreSQL instance with anvil. Each test
fails on any invariant violation, on a fault the service does not survive, or
when the run cannot go on; the message is the suite's table. Seeds are fixed;
every process is stopped at the end, also when a test fails or times out.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

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

# Not part of `make test`: about ten minutes of waiting for epochs, outages and settlement;
# `make chaos` runs it (docs/operations.md, "Chaos suite").
pytestmark = pytest.mark.chaos


def _run(tmp_path: Path, backend: str, kinds: tuple[str, ...], seed: int) -> None:
    config = chaos.ChaosConfig(
        backend=backend,
        runs=len(kinds),
        seed=seed,
        kinds=kinds,
        outage_s=(5.0, 8.0),
        workdir=tmp_path,
    )
    report = asyncio.run(chaos.run_chaos(config))
    assert report.ok, "\n" + chaos.table([report])
    assert sorted(f.kind for f in report.faults) == sorted(kinds)
    assert not [f for f in report.faults if f.skipped], "\n" + chaos.table([report])
    # A check after every fault and one at the end, each with settled epochs to look at.
    assert report.checks == len(kinds) + 1
    assert report.epochs_settled > 0


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(1500)
def test_sqlite_embedded_chain_under_kills_a_torn_journal_and_a_redis_outage(
    tmp_path: Path,
) -> None:
    _run(tmp_path, "sqlite", ("kill9", "journal_tear", "redis_outage"), seed=18)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.anvil
@pytest.mark.timeout(1500)
def test_postgres_anvil_under_kills_and_database_and_chain_outages(tmp_path: Path) -> None:
    _run(tmp_path, "postgres", ("kill9", "postgres_outage", "chain_outage"), seed=18)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(1500)
@pytest.mark.parametrize(
    ("backend", "faults"),
    [
        pytest.param("sqlite", 2, id="sqlite-embedded-chain"),
        pytest.param(
            "postgres", 1, id="postgres-anvil", marks=[pytest.mark.postgres, pytest.mark.anvil]
        ),
    ],
)
def test_kill_between_chain_transaction_and_its_record(
    tmp_path: Path, backend: str, faults: int
) -> None:
    # The service has the fault points (wattx.services.faults): a fault that cannot be
    # injected is a failure here, never a skip.
    assert chaos.hook_supported(), f"no fault points for `{chaos.HOOK_ENV}`"
    _run(tmp_path, backend, ("chain_window",) * faults, seed=18)
