"""When the sun is up at a site: where a live demo's day begins."""

from __future__ import annotations

from datetime import date, datetime

import pvlib  # type: ignore[import-untyped]

from wattx.domain.epochs import EpochSchedule
from wattx.sim.site import Site
from wattx.sim.timegrid import TimeGrid


def first_light(site: Site, day: date, step_s: int) -> datetime | None:
    """The start (UTC) of the first step of ``step_s`` seconds on ``day`` (a UTC day) whose
    midpoint finds the sun above the horizon at ``site`` (refraction included), or ``None``
    when it stays below all day (a polar night).

    The midpoint is where the weather model evaluates the sun (:mod:`wattx.sim.weather`), so
    this is the first step in which the site's panels can produce.
    """
    grid = TimeGrid.for_days(day, 1, EpochSchedule(step_s))
    position = pvlib.solarposition.get_solarposition(
        grid.midpoints(), site.latitude, site.longitude, altitude=site.altitude_m
    )
    for step, elevation in enumerate(position["apparent_elevation"].to_numpy()):
        if elevation > 0.0:
            return grid.step_start(step)
    return None
