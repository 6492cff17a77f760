"""Zones and their tariffs: the grid's prices bound every local trade."""

from __future__ import annotations

from dataclasses import dataclass, field

from wattx.domain.errors import ValidationError


class NegativeCapacityError(ValidationError):
    code = "negative_capacity"
    title = "A link capacity must be a non-negative number of Wh"


@dataclass(frozen=True, slots=True)
class TimeOfUseBand:
    """Tariffs that apply from ``start_hour`` (inclusive, 0-23, UTC) to the next band.

    ``feed_in`` is what the grid pays for exported energy (the floor of any sell);
    ``retail`` is what it charges for imported energy (the ceiling of any buy).
    Both are micro-units per kWh.
    """

    start_hour: int
    feed_in: int
    retail: int

    def __post_init__(self) -> None:
        if not 0 <= self.start_hour <= 23:
            raise ValidationError("start_hour must be 0..23", start_hour=self.start_hour)
        if not 0 <= self.feed_in <= self.retail:
            raise ValidationError(
                "tariffs need 0 <= feed_in <= retail", feed_in=self.feed_in, retail=self.retail
            )


@dataclass(frozen=True, slots=True)
class Tariff:
    """A day of time-of-use bands, ordered by start hour, the first starting at 0."""

    bands: tuple[TimeOfUseBand, ...]

    def __post_init__(self) -> None:
        if not self.bands or self.bands[0].start_hour != 0:
            raise ValidationError("a tariff needs a band starting at hour 0")
        hours = [b.start_hour for b in self.bands]
        if hours != sorted(set(hours)):
            raise ValidationError("tariff bands must have distinct, increasing start hours")

    @classmethod
    def flat(cls, feed_in: int, retail: int) -> Tariff:
        return cls((TimeOfUseBand(0, feed_in, retail),))

    def band_at(self, hour: int) -> TimeOfUseBand:
        current = self.bands[0]
        for band in self.bands:
            if band.start_hour <= hour:
                current = band
            else:
                break
        return current


DEFAULT_TARIFF = Tariff(
    (
        TimeOfUseBand(0, feed_in=60_000, retail=220_000),
        TimeOfUseBand(7, feed_in=80_000, retail=300_000),
        TimeOfUseBand(17, feed_in=80_000, retail=380_000),
        TimeOfUseBand(21, feed_in=60_000, retail=260_000),
    )
)
"""A plausible default: 0.06-0.08 feed-in, 0.22-0.38 retail, per kWh."""


@dataclass(frozen=True, slots=True)
class Zone:
    """A part of the grid with its own market.

    ``position_km`` places the zone on a line for the distance term of the
    wheeling table; ``neighbours`` lists adjacent zones. Capacities are the Wh
    per epoch its link to the rest of the grid can import and export. ``parent``
    places the zone in the grid tree (a feeder's transformer, a transformer's
    point of common coupling): the link to the parent carries those capacities.
    """

    id: str
    name: str
    tariff: Tariff = DEFAULT_TARIFF
    position_km: int = 0
    neighbours: frozenset[str] = field(default_factory=frozenset)
    import_capacity_wh: int | None = None
    export_capacity_wh: int | None = None
    parent: str | None = None

    def __post_init__(self) -> None:
        for name, value in (
            ("import_capacity_wh", self.import_capacity_wh),
            ("export_capacity_wh", self.export_capacity_wh),
        ):
            if value is not None and value < 0:
                raise NegativeCapacityError(f"{name} must be >= 0", zone=self.id, value=value)
