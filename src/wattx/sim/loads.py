"""Electricity demand from the BDEW standard load profiles (demandlib), with noise.

Households follow BDEW's H25 profile and a school or office its G25 profile
(the 2025 revisions of H0 and G0; demandlib's older ``ElecSlp`` class that
builds H0/G0/G1 turns every warning into an error process-wide and fails under
pandas 3, so it is not used). Profiles are defined on local wall-clock time in
15-minute slots; each UTC step looks up the slot(s) its local time falls in
(averaging the slots of steps longer than 15 minutes), which handles daylight
saving time without gaps. demandlib scales a profile to 1 GWh a year; we scale
it to the consumer's annual kWh and multiply by a mean-one log-normal AR(1)
factor so no two households are alike.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import numpy as np
import pandas as pd  # type: ignore[import-untyped]
from demandlib import bdew  # type: ignore[import-untyped]

from wattx.sim.holidays import german_public_holidays
from wattx.sim.registers import FloatArray, WhArray, interval_wh_from_power
from wattx.sim.site import Site
from wattx.sim.timegrid import TimeGrid

_SLOT_S = 900
_PROFILE_ANNUAL_KWH = 1_000_000.0


class LoadProfileKind(StrEnum):
    HOUSEHOLD = "H25"
    BUSINESS = "G25"


def standard_profile_kw_per_gwh(kind: LoadProfileKind, site: Site, grid: TimeGrid) -> FloatArray:
    """Mean power per step in kW of a consumer of 1 GWh a year, following ``kind``."""
    slots_per_step = max(1, grid.step_s // _SLOT_S)
    slot_s = min(grid.step_s, _SLOT_S)
    utc = pd.date_range(grid.start, periods=grid.steps * slots_per_step, freq=f"{slot_s}s")
    local = utc.tz_convert(site.timezone).tz_localize(None).floor(f"{_SLOT_S}s")
    first, last = local.min().normalize(), local.max().normalize() + pd.Timedelta(days=1)
    slots = pd.date_range(first, last, freq=f"{_SLOT_S}s", inclusive="left")
    holidays = [d for y in range(first.year, last.year + 1) for d in german_public_holidays(y)]
    profile_class = bdew.H25 if kind is LoadProfileKind.HOUSEHOLD else bdew.G25
    with warnings.catch_warnings():
        # demandlib 0.2 uses pandas' deprecated ``inplace=`` keyword; the results are unaffected.
        warnings.simplefilter("ignore")
        profile = profile_class(slots, holidays=_holiday_dates(holidays))
    values = profile.reindex(local).to_numpy(dtype=np.float64)
    return np.asarray(values.reshape(grid.steps, slots_per_step).mean(axis=1), dtype=np.float64)


def _holiday_dates(holidays: list[date]) -> list[pd.Timestamp]:
    return [pd.Timestamp(d) for d in holidays]


@dataclass(frozen=True, slots=True)
class LoadNoise:
    """Log-normal AR(1) multiplier: ``sigma`` of the log, ``persistence`` per 15 minutes."""

    sigma: float = 0.35
    persistence: float = 0.8

    def factors(self, steps: int, step_s: int, rng: np.random.Generator) -> FloatArray:
        if self.sigma == 0.0:
            return np.ones(steps)
        phi = self.persistence ** (step_s / _SLOT_S)
        shocks = rng.standard_normal(steps) * np.sqrt(1.0 - phi * phi)
        level = np.empty(steps)
        current = rng.standard_normal()
        for i in range(steps):
            current = phi * current + shocks[i]
            level[i] = current
        # exp(sigma*x - sigma²/2) has mean one for standard normal x.
        return np.asarray(np.exp(self.sigma * level - self.sigma**2 / 2.0), dtype=np.float64)


def scaled_load_wh(
    profile_kw_per_gwh: FloatArray,
    annual_kwh: int,
    noise: LoadNoise,
    step_s: int,
    rng: np.random.Generator,
) -> WhArray:
    """Integer Wh per interval of a consumer of ``annual_kwh`` following the profile."""
    power_w = profile_kw_per_gwh * (annual_kwh * 1000.0 / _PROFILE_ANNUAL_KWH)
    power_w = power_w * noise.factors(len(profile_kw_per_gwh), step_s, rng)
    return interval_wh_from_power(power_w, step_s)
