"""Suite-wide test settings.

Hypothesis runs the ``ci`` profile (more examples, no deadline: the CI machine
is shared) when ``CI`` is set, the lighter ``dev`` profile otherwise.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
