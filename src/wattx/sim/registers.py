"""The meter boundary: from physical power (float) to integer Wh per interval.

Physics (irradiance, temperatures, load shapes) is computed in floats. A meter
does not report floats: it keeps a cumulative register of whole Wh. We model
exactly that. The register after interval ``i`` is
``floor(sum of the exact energies of intervals 0..i)``, and the energy of an
interval is the difference of consecutive registers. Consequences:

* every interval value is a non-negative integer;
* each one differs from its exact float energy by less than 1 Wh;
* the errors never accumulate: the run's total is the floor of the exact total.

Everything downstream (batteries, accounting, KPIs) then works on integers and
closes to the Wh.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
WhArray = npt.NDArray[np.int64]


def interval_wh_from_power(power_w: FloatArray, step_s: int) -> WhArray:
    """Integer Wh per interval of a non-negative mean power series, via a cumulative register."""
    energy_wh = np.clip(np.asarray(power_w, dtype=np.float64), 0.0, None) * (step_s / 3600.0)
    register = np.floor(np.cumsum(energy_wh)).astype(np.int64)
    return np.diff(register, prepend=np.int64(0))
