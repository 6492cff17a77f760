from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np

from wattx.domain.epochs import EpochSchedule
from wattx.sim.ev import ChargingSession, EvSpec, charging_wh, draw_sessions
from wattx.sim.holidays import easter_sunday, german_public_holidays
from wattx.sim.loads import (
    LoadNoise,
    LoadProfileKind,
    scaled_load_wh,
    standard_profile_kw_per_gwh,
)
from wattx.sim.seeding import random_stream
from wattx.sim.site import DEFAULT_SITE
from wattx.sim.timegrid import TimeGrid


def test_easter_and_german_holidays() -> None:
    assert easter_sunday(2026) == date(2026, 4, 5)
    assert easter_sunday(2027) == date(2027, 3, 28)
    holidays = german_public_holidays(2026)
    assert len(holidays) == 9
    assert date(2026, 5, 14) in holidays  # Ascension Day


def test_household_profile_scales_to_its_annual_consumption() -> None:
    year = TimeGrid(datetime(2026, 1, 1, tzinfo=UTC), 365 * 24, 3600)
    profile = standard_profile_kw_per_gwh(LoadProfileKind.HOUSEHOLD, DEFAULT_SITE, year)
    energy = scaled_load_wh(profile, 3_500, LoadNoise(sigma=0.0), 3600, random_stream(1, "l"))
    assert abs(int(energy.sum()) - 3_500_000) < 3_500_000 * 2 // 100


def test_profiles_work_across_daylight_saving_and_resolutions() -> None:
    for step_s in (300, 900, 3600):
        grid = TimeGrid(datetime(2026, 3, 28, tzinfo=UTC), 3 * 86_400 // step_s, step_s)
        profile = standard_profile_kw_per_gwh(LoadProfileKind.HOUSEHOLD, DEFAULT_SITE, grid)
        assert np.isfinite(profile).all()
        assert (profile > 0).all()


def test_office_load_drops_at_the_weekend() -> None:
    week = TimeGrid.for_days(date(2026, 6, 1), 7, EpochSchedule())  # Monday to Sunday
    profile = standard_profile_kw_per_gwh(LoadProfileKind.BUSINESS, DEFAULT_SITE, week)
    daily = profile.reshape(7, -1).sum(axis=1)
    assert daily[6] < 0.8 * daily[2]


def test_load_noise_is_seeded() -> None:
    grid = TimeGrid.for_days(date(2026, 6, 1), 2, EpochSchedule())
    profile = standard_profile_kw_per_gwh(LoadProfileKind.HOUSEHOLD, DEFAULT_SITE, grid)
    a = scaled_load_wh(profile, 3_000, LoadNoise(), 900, random_stream(5, "h1"))
    b = scaled_load_wh(profile, 3_000, LoadNoise(), 900, random_stream(5, "h1"))
    c = scaled_load_wh(profile, 3_000, LoadNoise(), 900, random_stream(5, "h2"))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_charging_respects_the_charger_limit_and_the_session() -> None:
    grid = TimeGrid.for_days(date(2026, 6, 1), 2, EpochSchedule())
    spec = EvSpec(charger_w=7_400)
    session = ChargingSession(
        arrival=datetime(2026, 6, 1, 17, 10, tzinfo=UTC),
        departure=datetime(2026, 6, 1, 18, 0, tzinfo=UTC),
        energy_wh=20_000,
    )
    drawn = charging_wh(spec, [session], grid)
    assert drawn.max() <= 7_400 * 900 // 3600
    assert drawn[: 17 * 4].sum() == 0
    assert drawn[18 * 4 :].sum() == 0
    # Plugged in for 50 minutes at 7.4 kW: the car leaves before it is full.
    assert drawn.sum() == 7_400 * 300 // 3600 + 3 * (7_400 * 900 // 3600)


def test_sessions_deliver_their_energy_within_limits() -> None:
    grid = TimeGrid.for_days(date(2026, 6, 1), 7, EpochSchedule())
    spec = EvSpec()
    sessions = draw_sessions(spec, grid, DEFAULT_SITE.timezone, random_stream(3, "ev"))
    assert sessions
    for session in sessions:
        assert session.arrival < session.departure
        assert 0 < session.energy_wh <= spec.battery_wh * 4 // 5
    drawn = charging_wh(spec, sessions, grid)
    assert drawn.max() <= spec.charger_w * 900 // 3600
    assert drawn.sum() <= sum(s.energy_wh for s in sessions)
