from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from wattx.sim.registers import interval_wh_from_power

powers = st.lists(st.floats(min_value=0.0, max_value=20_000.0), min_size=1, max_size=200)


@settings(deadline=None)
@given(powers, st.sampled_from([60, 300, 900, 3600]))
def test_intervals_are_whole_non_negative_and_sum_to_the_floored_total(
    power: list[float], step_s: int
) -> None:
    energy = interval_wh_from_power(np.array(power), step_s)
    exact = np.cumsum(np.array(power) * (step_s / 3600.0))
    assert energy.dtype == np.int64
    assert (energy >= 0).all()
    assert int(energy.sum()) == math.floor(exact[-1])
    assert np.all(np.abs(energy - np.array(power) * step_s / 3600.0) < 1.0 + 1e-9)
