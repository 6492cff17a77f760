"""A seeded stochastic cloud process: a Markov chain of sky states plus AR(1) noise.

The sky is in one of a few states (clear, broken cloud, overcast). The state
changes only on the hour, following a row-stochastic transition matrix; within
a state the clearness factor (cloudy GHI / clear-sky GHI) is the state's mean
plus an AR(1) process at the grid's resolution, clipped to ``[floor, 1]``. This
reproduces what matters for a market: runs of sunny and grey hours, and fast
fluctuations on broken-cloud days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wattx.sim.errors import SimulationConfigError
from wattx.sim.registers import FloatArray
from wattx.sim.timegrid import TimeGrid

_AR1_REFERENCE_STEP_S = 900


@dataclass(frozen=True, slots=True)
class SkyState:
    name: str
    mean_clearness: float
    clearness_sd: float


@dataclass(frozen=True, slots=True)
class CloudModel:
    """States, hourly transition probabilities, initial distribution and noise memory.

    ``persistence`` is the AR(1) coefficient per 15 minutes; it is rescaled to
    the grid's step (``persistence ** (step_s / 900)``) so the noise has the same
    memory in time at any resolution.
    """

    states: tuple[SkyState, ...]
    hourly_transitions: tuple[tuple[float, ...], ...]
    initial: tuple[float, ...]
    persistence: float = 0.7
    clearness_floor: float = 0.05

    def __post_init__(self) -> None:
        n = len(self.states)
        if n == 0 or len(self.hourly_transitions) != n or len(self.initial) != n:
            raise SimulationConfigError("cloud model needs one transition row per state")
        for row in (*self.hourly_transitions, self.initial):
            if len(row) != n or min(row) < 0.0 or abs(sum(row) - 1.0) > 1e-9:
                raise SimulationConfigError("cloud probabilities must be rows summing to 1")
        if not 0.0 <= self.persistence < 1.0:
            raise SimulationConfigError("AR(1) persistence must be in [0, 1)")

    def hourly_states(self, hours: int, rng: np.random.Generator) -> list[int]:
        """A path of state indices, one per hour."""
        path = [int(rng.choice(len(self.states), p=self.initial))]
        for _ in range(hours - 1):
            path.append(int(rng.choice(len(self.states), p=self.hourly_transitions[path[-1]])))
        return path

    def clearness(self, grid: TimeGrid, rng: np.random.Generator) -> FloatArray:
        """Clearness factor per grid step, in ``[clearness_floor, 1]``."""
        offsets_s = np.arange(grid.steps, dtype=np.int64) * grid.step_s
        hour_of_step = offsets_s // 3600
        states = np.asarray(self.hourly_states(int(hour_of_step[-1]) + 1, rng))[hour_of_step]
        means = np.array([s.mean_clearness for s in self.states])[states]
        sds = np.array([s.clearness_sd for s in self.states])[states]
        phi = self.persistence ** (grid.step_s / _AR1_REFERENCE_STEP_S)
        shocks = rng.standard_normal(grid.steps) * np.sqrt(1.0 - phi * phi)
        noise = np.empty(grid.steps)
        level = rng.standard_normal()
        for i in range(grid.steps):
            level = phi * level + shocks[i]
            noise[i] = level
        clearness = np.clip(means + sds * noise, self.clearness_floor, 1.0)
        return np.asarray(clearness, dtype=np.float64)


CENTRAL_EUROPE_SUMMER = CloudModel(
    states=(
        SkyState("clear", 0.95, 0.03),
        SkyState("broken", 0.65, 0.15),
        SkyState("overcast", 0.30, 0.08),
    ),
    hourly_transitions=(
        (0.90, 0.08, 0.02),
        (0.10, 0.80, 0.10),
        (0.03, 0.12, 0.85),
    ),
    initial=(0.45, 0.35, 0.20),
)
"""Default sky: mostly sunny with spells of broken cloud and a few grey days."""
