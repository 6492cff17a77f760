"""The simulation's time axis: equal steps of one delivery epoch, in UTC."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pandas as pd  # type: ignore[import-untyped]

from wattx.domain.epochs import EpochSchedule
from wattx.sim.errors import SimulationConfigError

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, slots=True)
class TimeGrid:
    """``steps`` intervals of ``step_s`` seconds from ``start`` (UTC, aligned to the step).

    One step is one delivery epoch, so step ``i`` is epoch ``first_epoch_id + i``.
    """

    start: datetime
    steps: int
    step_s: int = 900

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.start.utcoffset() != timedelta(0):
            raise SimulationConfigError("the grid starts at a UTC, timezone-aware time")
        if self.step_s <= 0 or SECONDS_PER_DAY % self.step_s != 0:
            raise SimulationConfigError("the step must divide a day", step_s=self.step_s)
        if self.steps <= 0:
            raise SimulationConfigError("the grid needs at least one step", steps=self.steps)
        if int(self.start.timestamp()) % self.step_s != 0:
            raise SimulationConfigError("the start must be aligned to the step")

    @classmethod
    def for_days(cls, first_day: date, days: int, schedule: EpochSchedule) -> TimeGrid:
        """Whole UTC days from midnight of ``first_day``, one step per epoch of ``schedule``."""
        if days <= 0:
            raise SimulationConfigError("days must be positive", days=days)
        start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
        return cls(start, days * SECONDS_PER_DAY // schedule.length_s, schedule.length_s)

    @property
    def step_hours(self) -> float:
        return self.step_s / 3600.0

    @property
    def steps_per_day(self) -> int:
        return SECONDS_PER_DAY // self.step_s

    @property
    def end(self) -> datetime:
        return self.start + timedelta(seconds=self.steps * self.step_s)

    @property
    def first_epoch_id(self) -> int:
        return int(self.start.timestamp()) // self.step_s

    def schedule(self, gate_closure_lead_s: int = 300) -> EpochSchedule:
        return EpochSchedule(length_s=self.step_s, gate_closure_lead_s=gate_closure_lead_s)

    def step_start(self, index: int) -> datetime:
        return self.start + timedelta(seconds=index * self.step_s)

    def epoch_id(self, index: int) -> int:
        return self.first_epoch_id + index

    def index_of_epoch(self, epoch_id: int) -> int:
        index = epoch_id - self.first_epoch_id
        if not 0 <= index < self.steps:
            raise SimulationConfigError("epoch outside the simulated period", epoch_id=epoch_id)
        return index

    def starts(self) -> pd.DatetimeIndex:
        """Interval starts as a UTC pandas index."""
        return pd.date_range(self.start, periods=self.steps, freq=f"{self.step_s}s")

    def midpoints(self) -> pd.DatetimeIndex:
        """Interval midpoints, where instantaneous physics stands in for the interval mean."""
        return self.starts() + pd.Timedelta(seconds=self.step_s / 2)

    def __iter__(self) -> Iterator[datetime]:
        return (self.step_start(i) for i in range(self.steps))
