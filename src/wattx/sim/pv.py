"""PV output of a rooftop system: plane-of-array irradiance, cell temperature, DC, inverter.

The chain, all from pvlib: Hay-Davies transposition to the module plane (tilt
and azimuth, ground albedo 0.2), SAPM cell temperature for an open-rack
glass/polymer module, PVWatts DC power with a temperature coefficient, a flat
system loss (soiling, wiring, mismatch, availability), and the PVWatts inverter
model clipped at the inverter's AC rating. Mean AC power per step is turned
into integer Wh per interval at the meter boundary (:mod:`wattx.sim.registers`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pvlib  # type: ignore[import-untyped]

from wattx.sim.errors import SimulationConfigError
from wattx.sim.registers import FloatArray, WhArray, interval_wh_from_power
from wattx.sim.weather import Weather

_MODULE_TEMPERATURE = pvlib.temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"][
    "open_rack_glass_polymer"
]
_INVERTER_NOMINAL_EFFICIENCY = 0.96
_PPM = 1_000_000


@dataclass(frozen=True, slots=True)
class PvSystem:
    """A PV system of ``peak_w`` DC watts at standard test conditions.

    ``azimuth_deg`` is clockwise from north (180 = south). ``system_loss_ppm`` is
    the flat loss before the inverter; ``inverter_ac_ppm`` the inverter's AC
    rating relative to ``peak_w``.
    """

    peak_w: int
    tilt_deg: float = 30.0
    azimuth_deg: float = 180.0
    gamma_pdc_per_c: float = -0.0037
    system_loss_ppm: int = 140_000
    inverter_ac_ppm: int = 1_000_000

    def __post_init__(self) -> None:
        if self.peak_w <= 0:
            raise SimulationConfigError("a PV system needs a positive peak power")
        if not 0.0 <= self.tilt_deg <= 90.0 or not 0.0 <= self.azimuth_deg < 360.0:
            raise SimulationConfigError("tilt must be 0..90 and azimuth 0..360 degrees")
        if not 0 <= self.system_loss_ppm < _PPM or self.inverter_ac_ppm <= 0:
            raise SimulationConfigError("loss must be below 100 % and the inverter positive")

    @property
    def inverter_ac_w(self) -> int:
        return self.peak_w * self.inverter_ac_ppm // _PPM


def pv_ac_power_w(system: PvSystem, weather: Weather) -> FloatArray:
    """Mean AC power per step in W (float physics)."""
    poa = pvlib.irradiance.get_total_irradiance(
        system.tilt_deg,
        system.azimuth_deg,
        weather.solar_zenith,
        weather.solar_azimuth,
        weather.dni,
        weather.ghi,
        weather.dhi,
        dni_extra=weather.dni_extra,
        albedo=0.2,
        model="haydavies",
    )
    poa_global = np.nan_to_num(np.asarray(poa["poa_global"], dtype=np.float64), nan=0.0)
    poa_global = np.clip(poa_global, 0.0, None)
    temp_cell = pvlib.temperature.sapm_cell(
        poa_global, weather.temp_air, weather.wind_speed, **_MODULE_TEMPERATURE
    )
    dc = pvlib.pvsystem.pvwatts_dc(poa_global, temp_cell, system.peak_w, system.gamma_pdc_per_c)
    dc = np.asarray(dc, dtype=np.float64) * (1.0 - system.system_loss_ppm / _PPM)
    ac = pvlib.inverter.pvwatts(
        dc, system.inverter_ac_w / _INVERTER_NOMINAL_EFFICIENCY, _INVERTER_NOMINAL_EFFICIENCY
    )
    return np.clip(np.nan_to_num(np.asarray(ac, dtype=np.float64), nan=0.0), 0.0, None)


def pv_interval_wh(system: PvSystem, weather: Weather, step_s: int) -> WhArray:
    """Integer Wh produced per interval, read from a cumulative export register."""
    return interval_wh_from_power(pv_ac_power_w(system, weather), step_s)
