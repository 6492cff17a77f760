"""Advisory reference price: a base price times five clamped factors.

``price = base × supply/demand × state of charge × distance × time of use ×
reliability``. Every factor is an integer in parts per million (``1_000_000``
is ×1), computed by its own small function and clamped to the range in
:class:`ReferencePriceWeights`; the product is rounded down once per factor.
The weights are one record so that governance can own them. The price is
shown to users and used by bidding agents; it never overrides a limit price.
"""

from __future__ import annotations

from dataclasses import dataclass

from wattx.domain import Tariff, ValidationError
from wattx.domain.zones import DEFAULT_TARIFF
from wattx.units import PPM_PER_UNIT

PPM = PPM_PER_UNIT


@dataclass(frozen=True, slots=True)
class ReferencePriceWeights:
    """Sensitivities and clamps of the five factors (all ppm unless named otherwise).

    - supply/demand: ``1 + supply_demand × (D − S) / (D + S)``, in
      ``[supply_demand_min, supply_demand_max]``;
    - state of charge: ``1 + state_of_charge × (½ − soc)``, full storage
      cheapens energy, empty storage dearer, in ``[soc_min, soc_max]``;
    - distance: ``1 + distance_per_km × km``, in ``[1, distance_max]``;
    - time of use: ``1 + time_of_use × (retail(hour) / mean retail − 1)``, in
      ``[tou_min, tou_max]``;
    - reliability: ``1 − reliability × (1 − supplier reliability)``, in
      ``[reliability_min, 1]``.
    """

    supply_demand: int = 500_000
    supply_demand_min: int = 500_000
    supply_demand_max: int = 1_500_000
    state_of_charge: int = 200_000
    soc_min: int = 900_000
    soc_max: int = 1_100_000
    distance_per_km: int = 10_000
    distance_max: int = 1_200_000
    time_of_use: int = 500_000
    tou_min: int = 700_000
    tou_max: int = 1_300_000
    reliability: int = 200_000
    reliability_min: int = 800_000

    def __post_init__(self) -> None:
        pairs = [
            (self.supply_demand_min, self.supply_demand_max),
            (self.soc_min, self.soc_max),
            (PPM, self.distance_max),
            (self.tou_min, self.tou_max),
            (self.reliability_min, PPM),
        ]
        if any(not 0 <= low <= high for low, high in pairs):
            raise ValidationError("each clamp needs 0 <= min <= max")


@dataclass(frozen=True, slots=True)
class ReferencePriceInputs:
    """What the reference price depends on.

    ``base_price`` is micro-units per kWh (e.g. the last clearing price or the
    midpoint of the zone's tariffs); ``demand_wh``/``supply_wh`` the open
    quantities; ``storage_soc_ppm`` the zone's aggregate battery state of
    charge; ``distance_km`` between supplier and buyer; ``hour`` the UTC hour
    of delivery with the zone's ``tariff``; ``reliability_ppm`` the share of
    the supplier's past trades it delivered.
    """

    base_price: int
    demand_wh: int = 0
    supply_wh: int = 0
    storage_soc_ppm: int = 500_000
    distance_km: int = 0
    hour: int = 12
    tariff: Tariff = DEFAULT_TARIFF
    reliability_ppm: int = PPM


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def supply_demand_factor(demand_wh: int, supply_wh: int, w: ReferencePriceWeights) -> int:
    """More demand than supply raises the price; balanced books (or empty ones) leave it."""
    total = demand_wh + supply_wh
    pressure = 0 if total <= 0 else (demand_wh - supply_wh) * PPM // total
    return _clamp(PPM + w.supply_demand * pressure // PPM, w.supply_demand_min, w.supply_demand_max)


def state_of_charge_factor(soc_ppm: int, w: ReferencePriceWeights) -> int:
    """Full batteries mean energy to spare (cheaper); empty ones mean scarcity (dearer)."""
    soc = _clamp(soc_ppm, 0, PPM)
    return _clamp(PPM + w.state_of_charge * (PPM // 2 - soc) // PPM, w.soc_min, w.soc_max)


def distance_factor(distance_km: int, w: ReferencePriceWeights) -> int:
    """Farther energy costs more to move, a premium growing per km up to its cap."""
    return _clamp(PPM + w.distance_per_km * max(distance_km, 0), PPM, w.distance_max)


def time_of_use_factor(hour: int, tariff: Tariff, w: ReferencePriceWeights) -> int:
    """Peak hours (retail above the day's mean) raise the price, off-peak lowers it."""
    hourly = [tariff.band_at(h).retail for h in range(24)]
    mean = sum(hourly) // 24
    if mean == 0:
        return PPM
    ratio = tariff.band_at(hour % 24).retail * PPM // mean
    return _clamp(PPM + w.time_of_use * (ratio - PPM) // PPM, w.tou_min, w.tou_max)


def reliability_factor(reliability_ppm: int, w: ReferencePriceWeights) -> int:
    """A supplier that fails to deliver is worth less per kWh promised."""
    shortfall = PPM - _clamp(reliability_ppm, 0, PPM)
    return _clamp(PPM - w.reliability * shortfall // PPM, w.reliability_min, PPM)


def reference_factors(
    inputs: ReferencePriceInputs, weights: ReferencePriceWeights | None = None
) -> list[tuple[str, int]]:
    """Each factor by name, in parts per million, in the order they are applied."""
    w = weights or ReferencePriceWeights()
    return [
        ("supply_demand", supply_demand_factor(inputs.demand_wh, inputs.supply_wh, w)),
        ("state_of_charge", state_of_charge_factor(inputs.storage_soc_ppm, w)),
        ("distance", distance_factor(inputs.distance_km, w)),
        ("time_of_use", time_of_use_factor(inputs.hour, inputs.tariff, w)),
        ("reliability", reliability_factor(inputs.reliability_ppm, w)),
    ]


def reference_price(
    inputs: ReferencePriceInputs, weights: ReferencePriceWeights | None = None
) -> int:
    """The advisory price in micro-units per kWh, rounded down."""
    price = inputs.base_price
    for _, factor in reference_factors(inputs, weights):
        price = price * factor // PPM
    return price
