from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np

from wattx.domain.epochs import EpochSchedule
from wattx.sim.clouds import CENTRAL_EUROPE_SUMMER
from wattx.sim.pv import PvSystem, pv_interval_wh
from wattx.sim.seeding import random_stream
from wattx.sim.site import DEFAULT_SITE
from wattx.sim.timegrid import TimeGrid
from wattx.sim.weather import simulate_weather

from .conftest import one_june_day

TEN_KWP = PvSystem(peak_w=10_000, tilt_deg=30.0, azimuth_deg=180.0)


def test_clear_june_day_is_zero_at_night_and_plausible_at_midday() -> None:
    grid = one_june_day()
    weather = simulate_weather(DEFAULT_SITE, grid, None, random_stream(1, "weather"))
    energy = pv_interval_wh(TEN_KWP, weather, grid.step_s)
    hours = np.arange(grid.steps) * grid.step_s / 3600.0  # UTC; local solar noon ~11:30 UTC
    night = (hours < 2.5) | (hours >= 20.5)
    assert energy.dtype == np.int64
    assert energy[night].sum() == 0
    midday = (hours >= 10.5) & (hours < 12.5)
    # 10 kWp south-facing at 48° N under a clear sky: 6-9 kW around noon.
    assert energy[midday].min() >= 1_500
    assert energy[midday].max() <= 2_250
    # A clear June day yields 5.5-8 kWh per kWp in central Europe.
    assert 55_000 <= energy.sum() <= 80_000


def test_clouds_reduce_yield_and_are_reproducible() -> None:
    grid = TimeGrid.for_days(date(2026, 6, 1), 7, EpochSchedule())
    clear = simulate_weather(DEFAULT_SITE, grid, None, random_stream(1, "w"))
    cloudy_a = simulate_weather(DEFAULT_SITE, grid, CENTRAL_EUROPE_SUMMER, random_stream(1, "w"))
    cloudy_b = simulate_weather(DEFAULT_SITE, grid, CENTRAL_EUROPE_SUMMER, random_stream(1, "w"))
    cloudy_c = simulate_weather(DEFAULT_SITE, grid, CENTRAL_EUROPE_SUMMER, random_stream(2, "w"))
    clear_wh = pv_interval_wh(TEN_KWP, clear, grid.step_s)
    a_wh = pv_interval_wh(TEN_KWP, cloudy_a, grid.step_s)
    assert np.array_equal(a_wh, pv_interval_wh(TEN_KWP, cloudy_b, grid.step_s))
    assert not np.array_equal(a_wh, pv_interval_wh(TEN_KWP, cloudy_c, grid.step_s))
    assert a_wh.sum() < clear_wh.sum()
    assert cloudy_a.clearness.min() >= 0.05
    assert cloudy_a.clearness.max() <= 1.0


def test_winter_yield_is_far_below_summer() -> None:
    winter = TimeGrid(datetime(2026, 12, 21, tzinfo=UTC), 96)
    summer = one_june_day()
    rng = random_stream(1, "w")
    winter_wh = pv_interval_wh(TEN_KWP, simulate_weather(DEFAULT_SITE, winter, None, rng), 900)
    summer_wh = pv_interval_wh(TEN_KWP, simulate_weather(DEFAULT_SITE, summer, None, rng), 900)
    assert 0 < winter_wh.sum() < summer_wh.sum() // 2


def test_inverter_clips_at_its_ac_rating() -> None:
    grid = one_june_day()
    weather = simulate_weather(DEFAULT_SITE, grid, None, random_stream(1, "weather"))
    small_inverter = PvSystem(peak_w=10_000, inverter_ac_ppm=500_000)
    energy = pv_interval_wh(small_inverter, weather, grid.step_s)
    # 5 kW for 15 minutes is 1,250 Wh; the register may carry one Wh of rounding.
    assert energy.max() <= 1_251
