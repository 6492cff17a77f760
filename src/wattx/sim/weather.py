"""Weather per grid step: irradiance (clear sky times clouds), air temperature, wind.

Clear-sky irradiance is pvlib's Ineichen-Perez model with the site's fixed
Linke turbidity, so no turbidity climatology file is read. Cloudy global
horizontal irradiance is split into direct and diffuse parts with the Erbs
model. Air temperature is a monthly mean for central Europe with a daily cycle
peaking at 15:00 local time, warmer on clear days; wind is a constant 2 m/s.
Values are instantaneous at each interval's midpoint and stand for the
interval's mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pvlib  # type: ignore[import-untyped]

from wattx.sim.clouds import CloudModel
from wattx.sim.registers import FloatArray
from wattx.sim.site import Site
from wattx.sim.timegrid import TimeGrid

MONTHLY_MEAN_AIR_TEMP_C = (1.0, 2.5, 6.0, 10.0, 14.5, 17.5, 19.5, 19.0, 15.0, 10.5, 5.5, 2.0)
"""Monthly mean air temperature of a central-European lowland town, January first."""

DAILY_AMPLITUDE_C = 5.0
WIND_SPEED_M_S = 2.0


@dataclass(frozen=True, slots=True)
class Weather:
    """Arrays of one value per grid step (float physics, W/m², degrees, m/s)."""

    ghi: FloatArray
    dni: FloatArray
    dhi: FloatArray
    clear_sky_ghi: FloatArray
    clearness: FloatArray
    solar_zenith: FloatArray
    solar_azimuth: FloatArray
    dni_extra: FloatArray
    airmass_relative: FloatArray
    temp_air: FloatArray
    wind_speed: FloatArray


def simulate_weather(
    site: Site, grid: TimeGrid, clouds: CloudModel | None, rng: np.random.Generator
) -> Weather:
    """Weather over ``grid`` at ``site``; ``clouds=None`` gives a cloudless sky."""
    times = grid.midpoints()
    position = pvlib.solarposition.get_solarposition(
        times, site.latitude, site.longitude, altitude=site.altitude_m
    )
    apparent_zenith = position["apparent_zenith"].to_numpy()
    zenith = position["zenith"].to_numpy()
    airmass_rel = pvlib.atmosphere.get_relative_airmass(apparent_zenith)
    pressure = pvlib.atmosphere.alt2pres(site.altitude_m)
    airmass_abs = pvlib.atmosphere.get_absolute_airmass(airmass_rel, pressure)
    day_of_year = times.day_of_year.to_numpy()
    dni_extra = np.asarray(pvlib.irradiance.get_extra_radiation(day_of_year), dtype=np.float64)
    # Night-time steps have no airmass; pvlib divides by it, and we zero those values below.
    with np.errstate(divide="ignore", invalid="ignore"):
        clear = pvlib.clearsky.ineichen(
            apparent_zenith, airmass_abs, site.linke_turbidity, site.altitude_m, dni_extra
        )
    clear_ghi = _finite(clear["ghi"])
    if clouds is None:
        clearness = np.ones(grid.steps)
        ghi, dni, dhi = clear_ghi, _finite(clear["dni"]), _finite(clear["dhi"])
    else:
        clearness = clouds.clearness(grid, rng)
        ghi = clear_ghi * clearness
        split = pvlib.irradiance.erbs(ghi, zenith, day_of_year)
        dni, dhi = _finite(split["dni"]), _finite(split["dhi"])
    return Weather(
        ghi=ghi,
        dni=dni,
        dhi=dhi,
        clear_sky_ghi=clear_ghi,
        clearness=clearness,
        solar_zenith=zenith,
        solar_azimuth=position["azimuth"].to_numpy(),
        dni_extra=dni_extra,
        airmass_relative=_finite(airmass_rel),
        temp_air=_air_temperature(site, grid, clearness, rng),
        wind_speed=np.full(grid.steps, WIND_SPEED_M_S),
    )


def _air_temperature(
    site: Site, grid: TimeGrid, clearness: FloatArray, rng: np.random.Generator
) -> FloatArray:
    local = grid.midpoints().tz_convert(site.timezone)
    monthly = np.array(MONTHLY_MEAN_AIR_TEMP_C)[local.month.to_numpy() - 1]
    hour = local.hour.to_numpy() + local.minute.to_numpy() / 60.0
    day_number = (np.arange(grid.steps) * grid.step_s) // 86_400
    day_offsets = rng.normal(0.0, 2.0, int(day_number[-1]) + 1)[day_number]
    # Clear skies heat up more by day and cool more by night: scale the cycle by clearness.
    cycle = DAILY_AMPLITUDE_C * (0.5 + clearness) * np.cos(2.0 * np.pi * (hour - 15.0) / 24.0)
    return np.asarray(monthly + day_offsets + cycle, dtype=np.float64)


def _finite(values: object) -> FloatArray:
    return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
