"""Where the sun rises: the step of first light, and where ``wattx demo``'s day begins."""

from __future__ import annotations

from datetime import UTC, date, datetime

from wattx.cli.simulate import DEMO_DARK_LEAD, demo_start
from wattx.sim.daylight import first_light
from wattx.sim.site import DEFAULT_SITE, Site

LONGYEARBYEN = Site("Longyearbyen", 78.22, 15.65, 10.0, "Arctic/Longyearbyen")


def test_first_light_is_the_step_in_which_the_sun_rises() -> None:
    # Freiburg's almanac sunrise: 4 December 2026 about 08:05 CET (07:05 UTC), 21 June
    # about 05:24 CEST (03:24 UTC); the sun's centre clears the horizon a minute or two
    # later, so the first quarter hour whose midpoint sees it is 07:00 and 03:30.
    assert first_light(DEFAULT_SITE, date(2026, 12, 4), 900) == datetime(
        2026, 12, 4, 7, 0, tzinfo=UTC
    )
    assert first_light(DEFAULT_SITE, date(2026, 6, 21), 900) == datetime(
        2026, 6, 21, 3, 30, tzinfo=UTC
    )
    # Hourly steps: 07:00–08:00 has its midpoint in daylight.
    assert first_light(DEFAULT_SITE, date(2026, 12, 4), 3600) == datetime(
        2026, 12, 4, 7, 0, tzinfo=UTC
    )


def test_polar_night_has_no_first_light_and_midnight_sun_has_it_at_midnight() -> None:
    assert first_light(LONGYEARBYEN, date(2026, 12, 4), 900) is None
    assert first_light(LONGYEARBYEN, date(2026, 6, 21), 900) == datetime(2026, 6, 21, tzinfo=UTC)


def test_the_demo_day_starts_an_hour_before_first_light() -> None:
    day = date(2026, 12, 4)
    assert DEMO_DARK_LEAD.total_seconds() == 3600
    assert demo_start(day, 900) == datetime(2026, 12, 4, 6, 0, tzinfo=UTC)
    assert demo_start(date(2026, 6, 21), 900) == datetime(2026, 6, 21, 2, 30, tzinfo=UTC)
