"""The price bounds of an epoch: feed-in (floor of a sell) and retail (ceiling of a buy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from wattx.domain.zones import Tariff


@dataclass(frozen=True, slots=True)
class PriceBounds:
    """Micro-units per kWh; every limit price an agent quotes lies in ``[feed_in, retail]``."""

    feed_in: int
    retail: int

    @classmethod
    def at(cls, tariff: Tariff, epoch_start: datetime) -> PriceBounds:
        """The band in force when the epoch starts (bands are keyed by UTC hour)."""
        band = tariff.band_at(epoch_start.hour)
        return cls(band.feed_in, band.retail)

    @property
    def midpoint(self) -> int:
        return (self.feed_in + self.retail) // 2

    def clamp(self, price: int) -> int:
        return min(max(price, self.feed_in), self.retail)
