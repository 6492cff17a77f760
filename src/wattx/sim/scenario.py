"""A scenario: one community, one place, one period, one sky, with every series precomputed.

Everything random is drawn here, once, from the community's seed: the weather,
each member's load noise and EV sessions, and the forecast errors agents see.
The same scenario can therefore be run under every market mechanism and the
grid-only baseline, and differences come from the market alone.

Forecasts: an agent sees its next epoch's PV and base load with a multiplicative
normal error (``forecast_error``, sd, default 10 %), rounded to Wh and floored at
zero; EV charging is known exactly (the car reports its need when it plugs in).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wattx.domain.zones import DEFAULT_TARIFF, Tariff
from wattx.sim.clouds import CENTRAL_EUROPE_SUMMER, CloudModel
from wattx.sim.community import Community, HouseholdKind, HouseholdSpec
from wattx.sim.ev import charging_wh, draw_sessions
from wattx.sim.loads import LoadNoise, LoadProfileKind, scaled_load_wh, standard_profile_kw_per_gwh
from wattx.sim.pv import pv_interval_wh
from wattx.sim.registers import FloatArray, WhArray
from wattx.sim.seeding import random_stream
from wattx.sim.site import DEFAULT_SITE, Site
from wattx.sim.timegrid import TimeGrid
from wattx.sim.weather import Weather, simulate_weather


@dataclass(frozen=True, slots=True)
class MemberSeries:
    """A member's integer Wh per step, actual and as forecast."""

    production_wh: WhArray
    base_load_wh: WhArray
    ev_wh: WhArray
    production_forecast_wh: WhArray
    consumption_forecast_wh: WhArray

    @property
    def consumption_wh(self) -> WhArray:
        return self.base_load_wh + self.ev_wh


@dataclass(frozen=True, slots=True)
class Scenario:
    community: Community
    site: Site
    grid: TimeGrid
    tariff: Tariff
    weather: Weather
    series: dict[str, MemberSeries]

    @property
    def seed(self) -> int:
        return self.community.seed


def build_scenario(
    community: Community,
    grid: TimeGrid,
    site: Site = DEFAULT_SITE,
    tariff: Tariff = DEFAULT_TARIFF,
    clouds: CloudModel | None = CENTRAL_EUROPE_SUMMER,
    load_noise: LoadNoise | None = None,
    forecast_error: float = 0.1,
) -> Scenario:
    """Weather, production, loads, EV charging and forecasts for every member."""
    seed = community.seed
    weather = simulate_weather(site, grid, clouds, random_stream(seed, "weather"))
    noise = load_noise if load_noise is not None else LoadNoise()
    profiles = {
        kind: standard_profile_kw_per_gwh(kind, site, grid)
        for kind in (LoadProfileKind.HOUSEHOLD, LoadProfileKind.BUSINESS)
    }
    series = {
        spec.id: _member_series(spec, grid, site, weather, profiles, noise, forecast_error, seed)
        for spec in community.members
    }
    return Scenario(community, site, grid, tariff, weather, series)


def _member_series(
    spec: HouseholdSpec,
    grid: TimeGrid,
    site: Site,
    weather: Weather,
    profiles: dict[LoadProfileKind, FloatArray],
    noise: LoadNoise,
    forecast_error: float,
    seed: int,
) -> MemberSeries:
    zeros = np.zeros(grid.steps, dtype=np.int64)
    production = pv_interval_wh(spec.pv, weather, grid.step_s) if spec.pv else zeros
    base = zeros
    if spec.has_load:
        kind = (
            LoadProfileKind.BUSINESS
            if spec.kind is HouseholdKind.SCHOOL
            else LoadProfileKind.HOUSEHOLD
        )
        rng = random_stream(seed, "load", spec.id)
        base = scaled_load_wh(profiles[kind], spec.annual_kwh, noise, grid.step_s, rng)
    ev = zeros
    if spec.ev is not None:
        sessions = draw_sessions(spec.ev, grid, site.timezone, random_stream(seed, "ev", spec.id))
        ev = charging_wh(spec.ev, sessions, grid)
    forecast_rng = random_stream(seed, "forecast", spec.id)
    return MemberSeries(
        production_wh=production,
        base_load_wh=base,
        ev_wh=ev,
        production_forecast_wh=_with_error(production, forecast_error, forecast_rng),
        consumption_forecast_wh=_with_error(base, forecast_error, forecast_rng) + ev,
    )


def _with_error(actual: WhArray, sd: float, rng: np.random.Generator) -> WhArray:
    factors = 1.0 + rng.normal(0.0, sd, len(actual)) if sd > 0.0 else np.ones(len(actual))
    return np.clip(np.rint(actual * factors), 0, None).astype(np.int64)
