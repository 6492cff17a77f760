"""Suite-wide test settings.

Hypothesis runs the ``ci`` profile (more examples, no deadline: the CI machine
is shared) when ``CI`` is set, the lighter ``dev`` profile otherwise.

Under pytest-xdist (``-n``) the controller compiles the contracts into the
on-disk artifact cache once, before the workers start, so that they read it
instead of each compiling the same contracts. The rules every test follows to
run in parallel are in ``tests/README.md``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from wattx.settlement.artifacts import load_all_artifacts


def pytest_configure(config: pytest.Config) -> None:
    is_worker = hasattr(config, "workerinput")
    if not is_worker and getattr(config.option, "numprocesses", None):
        load_all_artifacts()


settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
