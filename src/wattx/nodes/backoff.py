"""The daemon's reconnect backoff: exponential steps with full jitter.

Each failed dial doubles the step (from ``initial_s``, at most ``cap_s``); the wait
before the next dial is drawn uniformly between zero and the step. No wait exceeds
the cap, and after a service restart a fleet at the cap comes back spread evenly over
one cap (half of it on average) instead of all waiting about the cap.
"""

from __future__ import annotations

import random


def reconnect_wait_s(step_s: float, *, cap_s: float, rng: random.Random | None = None) -> float:
    """The wait before the next dial: uniform in [0, min(step, cap)]."""
    return (rng or random).uniform(0.0, min(step_s, cap_s))


def next_step_s(step_s: float, *, cap_s: float) -> float:
    """The step after one more failed dial."""
    return min(step_s * 2, cap_s)
