"""The chaos suite's run inside ``make test``: a few minutes, SQLite and the embedded chain.

Real processes (``wattx up`` and a private ``redis-server``) on 6-second epochs, so
that every fault lands near a gate closure or a settlement. Two faults, three
``kill -9`` at random points of the epoch and four restarts: ``chain_window`` (a
``kill -9``, then the service ends itself between a chain transaction and its
database record at its fault points) and ``journal_tear`` (a ``kill -9``, a torn last
line in the chain journal, a restart, an epoch of trading, a second ``kill -9`` and
restart). After each fault and at the end the invariants are checked, for credit and
energy. A fault that cannot be injected fails the test. The longer runs are
``make chaos`` (``test_chaos.py``) and ``bench/chaos.py --runs N``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import chaos, run_and_check


@pytest.mark.slow
@pytest.mark.redis
@pytest.mark.timeout(900)
def test_sqlite_embedded_chain_survives_kills_a_chain_window_and_a_torn_journal(
    tmp_path: Path,
) -> None:
    assert chaos.hook_supported(), f"no fault points for `{chaos.HOOK_ENV}`"
    report = run_and_check(tmp_path, "sqlite", ("chain_window", "journal_tear"), seed=21, epoch_s=6)
    assert report.orders_acknowledged > 0
    assert report.trades > 0
