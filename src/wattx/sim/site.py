"""Where the community is: the location PV and local-time load profiles depend on."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wattx.sim.errors import SimulationConfigError


@dataclass(frozen=True, slots=True)
class Site:
    """A location on Earth.

    ``linke_turbidity`` is the fixed atmospheric turbidity used by the Ineichen
    clear-sky model; passing it explicitly keeps pvlib from reading its global
    turbidity climatology file. 3.0 is typical of rural central Europe in summer.
    """

    name: str
    latitude: float
    longitude: float
    altitude_m: float
    timezone: str
    linke_turbidity: float = 3.0

    def __post_init__(self) -> None:
        if not -90.0 <= self.latitude <= 90.0 or not -180.0 <= self.longitude <= 180.0:
            raise SimulationConfigError("latitude/longitude out of range", site=self.name)
        if self.linke_turbidity <= 0.0:
            raise SimulationConfigError("Linke turbidity must be positive", site=self.name)
        try:
            ZoneInfo(self.timezone)  # unknown time zones fail here, not mid-run
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise SimulationConfigError("unknown time zone", timezone=self.timezone) from error


DEFAULT_SITE = Site(
    name="Freiburg im Breisgau",
    latitude=47.999,
    longitude=7.842,
    altitude_m=278.0,
    timezone="Europe/Berlin",
)
"""A central-European town (south-west Germany)."""
