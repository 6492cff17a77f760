"""How an agent prices an order: three strategies, all inside the tariff bounds.

* :class:`ZeroIntelligence` — a uniform random integer price in
  ``[feed_in, retail]`` from the agent's own seeded stream (Gode & Sunder's
  budget-constrained zero-intelligence traders).
* :class:`FixedMargin` — sellers ask ``feed_in + margin``, buyers bid
  ``retail - margin``, clamped to the bounds.
* :class:`Ramping` — opens at its reservation price (a seller at retail, a
  buyer at feed-in) and moves linearly toward the reference price (or the
  midpoint of the bounds when there is none) as gate closure approaches, like
  the smart-meter strategies of Grid Singularity's exchange. ``progress`` is the
  share of the order window elapsed, from 0 (window opens) to 1 (gate closes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import TYPE_CHECKING, Protocol

from wattx.domain.orders import Side
from wattx.sim.bounds import PriceBounds
from wattx.sim.errors import SimulationConfigError

if TYPE_CHECKING:
    # Only named in annotations: ``wattx`` imports this module (for the strategies' names)
    # at every start, and numpy is a tenth of a second of it.
    import numpy as np


class StrategyName(StrEnum):
    ZERO_INTELLIGENCE = "zero_intelligence"
    FIXED_MARGIN = "fixed_margin"
    RAMPING = "ramping"


class PricingStrategy(Protocol):
    def limit_price(
        self, side: Side, bounds: PriceBounds, reference_price: int | None, progress: Fraction
    ) -> int:
        """A limit price in micro-units per kWh, inside ``bounds``."""
        ...


@dataclass(slots=True)
class ZeroIntelligence:
    rng: np.random.Generator

    def limit_price(
        self, side: Side, bounds: PriceBounds, reference_price: int | None, progress: Fraction
    ) -> int:
        return int(self.rng.integers(bounds.feed_in, bounds.retail, endpoint=True))


@dataclass(frozen=True, slots=True)
class FixedMargin:
    margin: int = 40_000

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise SimulationConfigError("a margin cannot be negative", margin=self.margin)

    def limit_price(
        self, side: Side, bounds: PriceBounds, reference_price: int | None, progress: Fraction
    ) -> int:
        if side is Side.SELL:
            return bounds.clamp(bounds.feed_in + self.margin)
        return bounds.clamp(bounds.retail - self.margin)


@dataclass(frozen=True, slots=True)
class Ramping:
    def limit_price(
        self, side: Side, bounds: PriceBounds, reference_price: int | None, progress: Fraction
    ) -> int:
        target = bounds.clamp(reference_price) if reference_price is not None else bounds.midpoint
        step = min(max(progress, Fraction(0)), Fraction(1))
        if side is Side.SELL:
            # Rounded toward the opening price: the agent never concedes more than the schedule.
            return bounds.retail - int((bounds.retail - target) * step)
        return bounds.feed_in + int((target - bounds.feed_in) * step)


def gate_progress(now: datetime, window_opens: datetime, gate_closure: datetime) -> Fraction:
    """The share of the order window elapsed at ``now``, in ``[0, 1]``."""
    window_us = _microseconds(gate_closure - window_opens)
    if window_us <= 0:
        return Fraction(1)
    elapsed_us = _microseconds(now - window_opens)
    return min(max(Fraction(elapsed_us, window_us), Fraction(0)), Fraction(1))


def _microseconds(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def make_strategy(name: StrategyName, rng: np.random.Generator) -> PricingStrategy:
    if name is StrategyName.ZERO_INTELLIGENCE:
        return ZeroIntelligence(rng)
    if name is StrategyName.FIXED_MARGIN:
        return FixedMargin()
    return Ramping()
