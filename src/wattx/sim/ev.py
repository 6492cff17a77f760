"""Electric-vehicle home charging: sessions drawn per day, charged at the charger's limit.

Each day the car plugs in at home with probability ``plug_in_weekday`` (Monday
to Friday) or ``plug_in_weekend``. Arrival is normal around 18:00 local time
(sd 1.5 h, clipped to 14:00-23:00), departure normal around 07:30 the next
morning (sd 1 h, clipped to 05:00-10:00). The energy to recharge is the day's
distance (log-normal, median 35 km, sigma 0.6, clipped to 5-300 km) times the
car's consumption, at most 80 % of its battery. Charging is uncontrolled: full
charger power from arrival until the energy is in or the car leaves. All energy
is integer Wh: a step delivers at most ``charger_w * seconds_plugged_in // 3600``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from wattx.sim.errors import SimulationConfigError
from wattx.sim.registers import WhArray
from wattx.sim.timegrid import TimeGrid


@dataclass(frozen=True, slots=True)
class EvSpec:
    """A car and its wallbox."""

    charger_w: int = 11_000
    battery_wh: int = 60_000
    consumption_wh_per_km: int = 180
    plug_in_weekday: float = 0.8
    plug_in_weekend: float = 0.5

    def __post_init__(self) -> None:
        if self.charger_w <= 0 or self.battery_wh <= 0 or self.consumption_wh_per_km <= 0:
            raise SimulationConfigError("EV power, battery and consumption must be positive")


@dataclass(frozen=True, slots=True)
class ChargingSession:
    arrival: datetime
    departure: datetime
    energy_wh: int


def draw_sessions(
    spec: EvSpec, grid: TimeGrid, timezone: str, rng: np.random.Generator
) -> list[ChargingSession]:
    """One possible session per local day that starts in the grid (plus the evening before)."""
    tz = ZoneInfo(timezone)
    first_day = grid.start.astimezone(tz).date() - timedelta(days=1)
    days = (grid.end - grid.start).days + 2
    sessions = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        weekday = day.weekday() < 5
        plug_in = rng.random() < (spec.plug_in_weekday if weekday else spec.plug_in_weekend)
        arrival_h = float(np.clip(rng.normal(18.0, 1.5), 14.0, 23.0))
        departure_h = float(np.clip(rng.normal(7.5, 1.0), 5.0, 10.0))
        distance_km = float(np.clip(rng.lognormal(np.log(35.0), 0.6), 5.0, 300.0))
        if not plug_in:
            continue
        midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
        energy = min(int(distance_km * spec.consumption_wh_per_km), spec.battery_wh * 4 // 5)
        sessions.append(
            ChargingSession(
                arrival=_at_local_hour(midnight, arrival_h),
                departure=_at_local_hour(midnight + timedelta(days=1), departure_h),
                energy_wh=energy,
            )
        )
    return sessions


def _at_local_hour(midnight: datetime, hours: float) -> datetime:
    # Whole minutes: sessions are appointments, not physics.
    return midnight + timedelta(minutes=round(hours * 60))


def charging_wh(spec: EvSpec, sessions: list[ChargingSession], grid: TimeGrid) -> WhArray:
    """Integer Wh drawn by the charger in each grid step."""
    drawn = np.zeros(grid.steps, dtype=np.int64)
    grid_start = int(grid.start.timestamp())
    for session in sessions:
        remaining = session.energy_wh
        begin = int(session.arrival.timestamp()) - grid_start
        end = int(session.departure.timestamp()) - grid_start
        first = max(0, begin // grid.step_s)
        for index in range(first, grid.steps):
            if remaining == 0:
                break
            step_begin = index * grid.step_s
            plugged_s = min(end, step_begin + grid.step_s) - max(begin, step_begin)
            if plugged_s <= 0:
                if step_begin >= end:
                    break
                continue
            energy = min(remaining, spec.charger_w * plugged_s // 3600)
            drawn[index] += energy
            remaining -= energy
    return drawn
