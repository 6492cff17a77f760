"""Faults a virtual meter can suffer, and the answer the service should give to each.

The plan draws at most one fault per batch from the meter's own seeded stream,
so the same seed injects the same faults.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

from wattx.sim.errors import SimulationConfigError


class Fault(StrEnum):
    LOST = "lost"
    """The batch never arrives; the next one carries its energy in the registers."""
    LATE = "late"
    """The batch arrives after the meter's next batch."""
    DUPLICATED = "duplicated"
    """The batch arrives twice."""
    CLOCK_SKEW = "clock_skew"
    """The meter's clock runs ahead by :data:`CLOCK_SKEW_S`."""
    TAMPERED = "tampered"
    """A register was changed after the meter signed the batch."""


CLOCK_SKEW_S = 300
"""How far a skewed meter's clock runs ahead: beyond the service's 60 s tolerance."""

EXPECTED_ANSWER: dict[Fault, str] = {
    Fault.LATE: "sequence_not_increasing",
    Fault.DUPLICATED: "duplicate",
    Fault.CLOCK_SKEW: "timestamp_in_future",
    Fault.TAMPERED: "bad_signature",
}
"""The answer that should meet the faulty delivery (a lost batch meets none)."""

NO_FAULT = "none"


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Probability of each fault per batch, in ppm; together at most one million."""

    lost_ppm: int = 0
    late_ppm: int = 0
    duplicated_ppm: int = 0
    clock_skew_ppm: int = 0
    tampered_ppm: int = 0

    def __post_init__(self) -> None:
        rates = self._rates()
        if min(rates.values()) < 0 or sum(rates.values()) > 1_000_000:
            raise SimulationConfigError("fault rates are ppm >= 0 summing to at most 1,000,000")

    @classmethod
    def each(cls, ppm: int) -> FaultPlan:
        """Every fault with the same probability."""
        return cls(ppm, ppm, ppm, ppm, ppm)

    def _rates(self) -> dict[Fault, int]:
        return {
            Fault.LOST: self.lost_ppm,
            Fault.LATE: self.late_ppm,
            Fault.DUPLICATED: self.duplicated_ppm,
            Fault.CLOCK_SKEW: self.clock_skew_ppm,
            Fault.TAMPERED: self.tampered_ppm,
        }

    def draw(self, rng: random.Random) -> Fault | None:
        roll = rng.randrange(1_000_000)
        for fault, ppm in self._rates().items():
            if roll < ppm:
                return fault
            roll -= ppm
        return None
