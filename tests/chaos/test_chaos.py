"""The chaos suite's longer runs (``bench/chaos.py`` with a few faults per backend).

Real processes: ``wattx up``, a private ``redis-server``, and per backend SQLite
with the embedded chain or a private PostgreSQL instance with anvil. Each test
fails on any invariant violation, on a fault the service does not survive, or
when the run cannot go on; the message is the suite's table. Seeds are fixed;
every process is stopped at the end, also when a test fails or times out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import chaos, run_and_check

# Not part of `make test` (its short run is test_short_run.py): well over ten minutes of
# waiting for epochs, outages and settlement; `make chaos` runs it (docs/operations.md,
# "Chaos suite").
pytestmark = pytest.mark.chaos


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(1500)
def test_sqlite_embedded_chain_under_kills_a_torn_journal_and_a_redis_outage(
    tmp_path: Path,
) -> None:
    run_and_check(tmp_path, "sqlite", ("kill9", "journal_tear", "redis_outage"), seed=18)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.anvil
@pytest.mark.timeout(1500)
def test_postgres_anvil_under_kills_and_database_and_chain_outages(tmp_path: Path) -> None:
    run_and_check(tmp_path, "postgres", ("kill9", "postgres_outage", "chain_outage"), seed=18)


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
    run_and_check(tmp_path, backend, ("chain_window",) * faults, seed=18)


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(1500)
def test_sqlite_with_a_full_disk(tmp_path: Path) -> None:
    # The data directory on a small tmpfs (needs root): a full disk answers 503 and
    # /readyz says so; the invariants then show nothing minted the database missed.
    report = run_and_check(tmp_path, "sqlite", ("disk_full",), seed=19)
    note = report.faults[0].note or ""
    # The fault bit: /readyz saw the full disk. Whether a write was refused as well depends
    # on whether the window's commits needed new pages: SQLite reuses its WAL's, and on
    # 2026-12-06 a 6.6 s window's 104 answers all fit (2xx 63, 409 41, /readyz 503 13
    # times). A refused write is a 503 (the survival check fails any other 5xx);
    # tests/service/test_storage_outage.py refuses one every time.
    assert "503 storage_writable=false" in note, "\n" + chaos.table([report])


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.anvil
@pytest.mark.timeout(1500)
def test_postgres_anvil_kills_under_24_concurrent_clients(tmp_path: Path) -> None:
    run_and_check(tmp_path, "postgres", ("kill9", "kill9"), seed=20, traders=24)
