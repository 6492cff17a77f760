"""Advisory reference price: a base price times five clamped factors.

``price = base × supply/demand × state of charge × distance × time of use ×
reliability``. Every factor is an integer in parts per million (``1_000_000``
is ×1), computed by its own small function and clamped to the range in
:class:`ReferencePriceWeights`; the product is rounded down once per factor.
The weights are one record so that governance can own them
(:func:`governed_weights`). The price is shown to users and used by bidding
agents; it never overrides a limit price. :func:`explain` gives each factor
with its inputs, its unclamped value and its clamp (docs/market.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from wattx.domain import Tariff, ValidationError
from wattx.domain.zones import DEFAULT_TARIFF
from wattx.units import BPS_PER_UNIT, PPM_PER_UNIT

PPM = PPM_PER_UNIT


@dataclass(frozen=True, slots=True)
class ReferencePriceWeights:
    """Sensitivities and clamps of the five factors (all ppm unless named otherwise).

    - supply/demand: ``1 + supply_demand × (D − S) / (D + S)``, in
      ``[supply_demand_min, supply_demand_max]``;
    - state of charge: ``1 + state_of_charge × (½ − soc)``, full storage
      cheapens energy, empty storage dearer, in ``[soc_min, soc_max]``;
    - distance: ``1 + distance × (landed / base − 1)`` where ``landed =
      (base + wheeling) / (1 − loss)`` is the base delivered over the zone
      rate from the supplier's zone, in ``[1, distance_max]``;
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
    distance: int = 1_000_000
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
    charge; ``wheeling_per_kwh`` and ``loss_bps`` the zone rate from the
    supplier's zone to the buyer's; ``hour`` the UTC hour of delivery with the
    zone's ``tariff``; ``reliability_ppm`` the share of the suppliers' traded
    energy they delivered. ``evidence`` holds the raw figures each factor's
    input was derived from (e.g. stored and capacity Wh), shown beside it.
    """

    base_price: int
    demand_wh: int = 0
    supply_wh: int = 0
    storage_soc_ppm: int = 500_000
    wheeling_per_kwh: int = 0
    loss_bps: int = 0
    hour: int = 12
    tariff: Tariff = DEFAULT_TARIFF
    reliability_ppm: int = PPM
    evidence: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


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


def landed_ppm(base_price: int, wheeling_per_kwh: int, loss_bps: int) -> int:
    """``(base + wheeling) / (1 − loss) / base`` in ppm: what a kWh priced at the base
    costs the buyer once moved over the zone rate (1 for a zero base)."""
    if base_price <= 0:
        return PPM
    loss = _clamp(loss_bps, 0, BPS_PER_UNIT - 1)
    numerator = (base_price + max(wheeling_per_kwh, 0)) * PPM * BPS_PER_UNIT
    return numerator // ((BPS_PER_UNIT - loss) * base_price)


def distance_factor(
    base_price: int, wheeling_per_kwh: int, loss_bps: int, w: ReferencePriceWeights
) -> int:
    """Energy from farther costs more to move: the zone rate's wheeling and loss, as a
    premium over the base, weighted and capped."""
    premium = landed_ppm(base_price, wheeling_per_kwh, loss_bps) - PPM
    return _clamp(PPM + w.distance * premium // PPM, PPM, w.distance_max)


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
        (
            "distance",
            distance_factor(inputs.base_price, inputs.wheeling_per_kwh, inputs.loss_bps, w),
        ),
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


# -- governance and the breakdown ------------------------------------------------

GOVERNED_WEIGHTS: tuple[tuple[str, str], ...] = (
    ("supply_demand", "refprice_supply_demand_weight_bps"),
    ("state_of_charge", "refprice_storage_weight_bps"),
    ("distance", "refprice_distance_weight_bps"),
    ("time_of_use", "refprice_time_of_use_weight_bps"),
    ("reliability", "refprice_reliability_weight_bps"),
)
"""Each factor's sensitivity field and the governed parameter that scales it."""

GOVERNED_BASE = "refprice_base_per_kwh"
"""The governed base price (micro-units per kWh); 0 leaves the base to the market."""


def governed_weights(
    parameters: Mapping[str, int], defaults: ReferencePriceWeights | None = None
) -> ReferencePriceWeights:
    """The weights under a governed parameter set: each factor's sensitivity is its
    default times ``refprice_<factor>_weight_bps / 10_000`` (10,000 bps keeps the
    default, 0 switches the factor off); clamps stay. Absent parameters keep the default."""
    w = defaults or ReferencePriceWeights()
    scaled: dict[str, int] = {}
    for attribute, name in GOVERNED_WEIGHTS:
        if name in parameters:
            bps = _clamp(parameters[name], 0, BPS_PER_UNIT)
            scaled[attribute] = getattr(w, attribute) * bps // BPS_PER_UNIT
    return replace(w, **scaled)


def base_price(
    parameters: Mapping[str, int], last_trade_price: int | None, feed_in: int, retail: int
) -> tuple[int, str]:
    """The base and where it came from: the governed base when set (non-zero), else the
    zone's last trade price, else the midpoint of its tariff band at the delivery hour."""
    governed = parameters.get(GOVERNED_BASE, 0)
    if governed > 0:
        return governed, "governance"
    if last_trade_price is not None:
        return last_trade_price, "last_trade"
    return (feed_in + retail) // 2, "tariff_midpoint"


@dataclass(frozen=True, slots=True)
class FactorBreakdown:
    """One factor: its value (ppm, clamped), its value before the clamp, the clamp,
    the sensitivity it ran with and the inputs it was computed from."""

    name: str
    value: int
    unclamped: int
    minimum: int
    maximum: int
    weight: int
    inputs: Mapping[str, int]

    @property
    def clamped(self) -> bool:
        return self.value != self.unclamped


@dataclass(frozen=True, slots=True)
class ReferenceBreakdown:
    base_price: int
    price: int
    factors: tuple[FactorBreakdown, ...]


def _unclamped(inputs: ReferencePriceInputs, w: ReferencePriceWeights) -> dict[str, int]:
    """Each factor's formula before its clamp (the same arithmetic as the factor functions)."""
    total = inputs.demand_wh + inputs.supply_wh
    pressure = 0 if total <= 0 else (inputs.demand_wh - inputs.supply_wh) * PPM // total
    soc = _clamp(inputs.storage_soc_ppm, 0, PPM)
    premium = landed_ppm(inputs.base_price, inputs.wheeling_per_kwh, inputs.loss_bps) - PPM
    hourly = [inputs.tariff.band_at(h).retail for h in range(24)]
    mean = sum(hourly) // 24
    ratio = PPM if mean == 0 else inputs.tariff.band_at(inputs.hour % 24).retail * PPM // mean
    shortfall = PPM - _clamp(inputs.reliability_ppm, 0, PPM)
    return {
        "supply_demand": PPM + w.supply_demand * pressure // PPM,
        "state_of_charge": PPM + w.state_of_charge * (PPM // 2 - soc) // PPM,
        "distance": PPM + w.distance * premium // PPM,
        "time_of_use": PPM + w.time_of_use * (ratio - PPM) // PPM,
        "reliability": PPM - w.reliability * shortfall // PPM,
    }


def explain(
    inputs: ReferencePriceInputs, weights: ReferencePriceWeights | None = None
) -> ReferenceBreakdown:
    """The price with every factor's inputs, unclamped value, clamp and weight."""
    w = weights or ReferencePriceWeights()
    band = inputs.tariff.band_at(inputs.hour % 24)
    own_inputs: dict[str, dict[str, int]] = {
        "supply_demand": {"demand_wh": inputs.demand_wh, "supply_wh": inputs.supply_wh},
        "state_of_charge": {"soc_ppm": inputs.storage_soc_ppm},
        "distance": {
            "wheeling_per_kwh": inputs.wheeling_per_kwh,
            "loss_bps": inputs.loss_bps,
            "landed_ppm": landed_ppm(inputs.base_price, inputs.wheeling_per_kwh, inputs.loss_bps),
        },
        "time_of_use": {
            "hour": inputs.hour % 24,
            "retail": band.retail,
            "mean_retail": sum(inputs.tariff.band_at(h).retail for h in range(24)) // 24,
        },
        "reliability": {"reliability_ppm": inputs.reliability_ppm},
    }
    clamps = {
        "supply_demand": (w.supply_demand_min, w.supply_demand_max),
        "state_of_charge": (w.soc_min, w.soc_max),
        "distance": (PPM, w.distance_max),
        "time_of_use": (w.tou_min, w.tou_max),
        "reliability": (w.reliability_min, PPM),
    }
    sensitivity = {
        "supply_demand": w.supply_demand,
        "state_of_charge": w.state_of_charge,
        "distance": w.distance,
        "time_of_use": w.time_of_use,
        "reliability": w.reliability,
    }
    raw = _unclamped(inputs, w)
    factors = []
    for name, value in reference_factors(inputs, w):
        low, high = clamps[name]
        factors.append(
            FactorBreakdown(
                name=name,
                value=value,
                unclamped=raw[name],
                minimum=low,
                maximum=high,
                weight=sensitivity[name],
                inputs={**own_inputs[name], **inputs.evidence.get(name, {})},
            )
        )
    return ReferenceBreakdown(inputs.base_price, reference_price(inputs, w), tuple(factors))
