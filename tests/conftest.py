"""Suite-wide test settings.

Hypothesis runs the ``ci`` profile (more examples, no deadline: the CI machine
is shared) when ``CI`` is set, the lighter ``dev`` profile otherwise.

Under pytest-xdist (``-n``) the controller compiles the contracts into the
on-disk artifact cache once, before the workers start, so that they read it
instead of each compiling the same contracts. The rules every test follows to
run in parallel are in ``tests/README.md``.

The workers take the suite module by module (``--dist loadscope``) in the order of
collection (``--no-loadscope-reorder``), which :func:`pytest_collection_modifyitems`
sets: modules with a ``slow`` test first, then the rest by their number of tests. A
module of one long test (the chaos short run, the demo in a browser) would otherwise
come last and run alone while the other workers wait.

Every process of the suite collects garbage at the thresholds a listening service uses
(:data:`wattx.cli.heap.SERVING_THRESHOLDS`, :func:`pytest_configure`). At the end of the
session the heap is frozen (:func:`pytest_sessionfinish`): a worker's exit no longer
collects it.
"""

from __future__ import annotations

import gc
import os
from collections import Counter

import pytest
from hypothesis import HealthCheck, settings

from support.compiled_sql import share_compiled_sql
from wattx.cli.heap import SERVING_THRESHOLDS
from wattx.settlement.artifacts import load_all_artifacts


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the modules (keeping each one's tests together and in order): those with a
    ``slow`` test first, as collected, then the others by their number of tests, most
    first (pytest-xdist's own order)."""
    sizes: Counter[str] = Counter(_scope(item) for item in items)
    slow = {_scope(item) for item in items if item.get_closest_marker("slow") is not None}

    def rank(item: pytest.Item) -> tuple[bool, int]:
        scope = _scope(item)
        return (False, 0) if scope in slow else (True, -sizes[scope])

    # The sort is stable: ties keep their collected order, so a module stays in one piece.
    items.sort(key=rank)


def _scope(item: pytest.Item) -> str:
    """The unit pytest-xdist's ``loadscope`` hands to one worker: a module, or a class."""
    return item.nodeid.rsplit("::", 1)[0]


def pytest_configure(config: pytest.Config) -> None:
    # The services a test runs in its own process collect garbage as `wattx up` does once
    # it listens (``wattx.cli.heap``), not every 700 allocations: at the interpreter's
    # thresholds the cyclic collector took a tenth of a worker's CPU, most of it in full
    # collections of a heap that grows with every module's imports (tests/README.md).
    gc.set_threshold(*SERVING_THRESHOLDS)
    # Every statement compiled once per process, not once per service a test starts.
    share_compiled_sql()
    is_worker = hasattr(config, "workerinput")
    if not is_worker and getattr(config.option, "numprocesses", None):
        load_all_artifacts()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Freeze the heap once every test has finished: pytest's clean-up and the interpreter's
    exit each collect the whole heap once more, and a worker's heap is large by the end of a
    run (a collection took seconds); pytest-xdist waits at most 10 s for its workers to
    exit before it kills them, and the run ends only then. Garbage left at this point is
    never collected, so an object that would raise while being finalised is not reported at
    the end of the run (pytest reports those as warnings only)."""
    gc.freeze()


settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
