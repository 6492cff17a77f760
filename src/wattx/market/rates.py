"""Zone-to-zone rates: wheeling charge and loss factor, and their integer arithmetic.

A trade between a seller in zone S and a buyer in zone B moves ``q`` Wh into
the grid at S; the buyer receives ``delivered(q) = q - floor(q * loss / 10_000)``
(losses are rounded *down* to the Wh, in the buyer's favour) and pays the
seller's price plus a wheeling charge per kWh sold. The buyer's limit is a
*landed* price per delivered kWh, so a seller price ``p`` is acceptable to a
buyer limit ``b`` exactly when ``(p + w) * 10_000 <= b * (10_000 - loss)``.
Rounding the loss down is what makes that rate test imply the per-trade test
``1000 * (value + wheeling) <= delivered * b`` for every integer quantity.

Defaults (DESIGN.md): same zone 0.5 ¢/kWh and 1 %; adjacent 1.0 ¢ and 3 %;
farther 1.5 ¢ + 0.1 ¢/km and 3 % + 1 %/km, the loss capped at 15 %.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from wattx.domain import ValidationError, Zone
from wattx.grid.model import GridTree
from wattx.units import BPS_PER_UNIT, WH_PER_KWH


@dataclass(frozen=True, slots=True)
class ZoneRate:
    """The charge (micro-units per kWh sold) and loss (basis points) of one zone pair."""

    wheeling_per_kwh: int
    loss_bps: int

    def __post_init__(self) -> None:
        if self.wheeling_per_kwh < 0:
            raise ValidationError("wheeling charge must be >= 0", wheeling=self.wheeling_per_kwh)
        if not 0 <= self.loss_bps < BPS_PER_UNIT:
            raise ValidationError("loss must be in [0, 10000) bps", loss_bps=self.loss_bps)

    def delivered(self, sold_wh: int) -> int:
        """Wh reaching the buyer when ``sold_wh`` enter the grid (loss rounded down)."""
        return sold_wh - sold_wh * self.loss_bps // BPS_PER_UNIT

    def sold_for(self, delivered_wh: int) -> int:
        """The least Wh sold whose delivery is ``delivered_wh`` (``delivered_wh >= 1``).

        ``delivered`` grows by 0 or 1 per Wh sold, so this hits the target exactly.
        """
        return (delivered_wh - 1) * BPS_PER_UNIT // (BPS_PER_UNIT - self.loss_bps) + 1

    def seller_cap(self, buy_limit: int) -> int:
        """The highest seller price a buyer with landed limit ``buy_limit`` accepts."""
        return buy_limit * (BPS_PER_UNIT - self.loss_bps) // BPS_PER_UNIT - self.wheeling_per_kwh

    def buy_threshold(self, sell_price: int) -> int:
        """The lowest landed buy limit that accepts seller price ``sell_price``."""
        numerator = (sell_price + self.wheeling_per_kwh) * BPS_PER_UNIT
        return -(-numerator // (BPS_PER_UNIT - self.loss_bps))

    def landed(self, sell_price: int) -> tuple[int, int]:
        """The buyer's cost per delivered kWh as an exact fraction ``(numerator, denominator)``."""
        return (sell_price + self.wheeling_per_kwh) * BPS_PER_UNIT, BPS_PER_UNIT - self.loss_bps

    def wheeling_fee(self, sold_wh: int) -> int:
        """Wheeling charge for ``sold_wh``, rounded down to a micro-unit."""
        return sold_wh * self.wheeling_per_kwh // WH_PER_KWH


@dataclass(frozen=True, slots=True)
class ZoneRateTable:
    """Rates between zones by relation (same, adjacent, farther), plus explicit overrides.

    ``overrides`` holds ``(seller_zone, buyer_zone, rate)`` triples that replace
    the computed rate for that direction.
    """

    same_zone_wheeling: int = 5_000
    same_zone_loss_bps: int = 100
    adjacent_wheeling: int = 10_000
    adjacent_loss_bps: int = 300
    far_wheeling: int = 15_000
    far_wheeling_per_km: int = 1_000
    far_loss_bps: int = 300
    far_loss_bps_per_km: int = 100
    max_loss_bps: int = 1_500
    overrides: tuple[tuple[str, str, ZoneRate], ...] = ()

    def rate(self, seller_zone: Zone, buyer_zone: Zone) -> ZoneRate:
        """The rate for energy sold in ``seller_zone`` and delivered in ``buyer_zone``."""
        for source, sink, rate in self.overrides:
            if source == seller_zone.id and sink == buyer_zone.id:
                return rate
        if seller_zone.id == buyer_zone.id:
            return ZoneRate(
                self.same_zone_wheeling, min(self.same_zone_loss_bps, self.max_loss_bps)
            )
        if buyer_zone.id in seller_zone.neighbours or seller_zone.id in buyer_zone.neighbours:
            return ZoneRate(self.adjacent_wheeling, min(self.adjacent_loss_bps, self.max_loss_bps))
        distance_km = abs(seller_zone.position_km - buyer_zone.position_km)
        return ZoneRate(
            self.far_wheeling + self.far_wheeling_per_km * distance_km,
            min(self.far_loss_bps + self.far_loss_bps_per_km * distance_km, self.max_loss_bps),
        )

    def is_override(self, seller_zone: str, buyer_zone: str) -> bool:
        """Whether the rate of this direction is set explicitly rather than computed."""
        return any(
            source == seller_zone and sink == buyer_zone for source, sink, _ in self.overrides
        )

    def with_overrides(self, overrides: Iterable[tuple[str, str, ZoneRate]]) -> ZoneRateTable:
        """This table's defaults with ``overrides`` replacing its overrides (sorted by pair)."""
        ordered = sorted(overrides, key=lambda item: (item[0], item[1]))
        return replace(self, overrides=tuple(ordered))

    @classmethod
    def lossless(cls) -> ZoneRateTable:
        """No wheeling charge and no loss anywhere (tests, single-building markets)."""
        return cls(0, 0, 0, 0, 0, 0, 0, 0, 0)


GOVERNED_RATES: tuple[tuple[str, str], ...] = (
    ("wheeling_same_zone_per_kwh", "same_zone_wheeling"),
    ("wheeling_adjacent_per_kwh", "adjacent_wheeling"),
    ("wheeling_far_base_per_kwh", "far_wheeling"),
    ("wheeling_far_per_km_per_kwh", "far_wheeling_per_km"),
    ("loss_same_zone_ppm", "same_zone_loss_bps"),
    ("loss_adjacent_ppm", "adjacent_loss_bps"),
    ("loss_far_base_ppm", "far_loss_bps"),
    ("loss_far_per_km_ppm", "far_loss_bps_per_km"),
    ("loss_cap_ppm", "max_loss_bps"),
)
"""Each governed zone-rate parameter and the table field it sets."""

_PPM_PER_BPS = 100


def governed_rates(table: ZoneRateTable, parameters: Mapping[str, int]) -> ZoneRateTable:
    """``table`` with the governed zone rates of ``parameters`` laid over it.

    Wheeling charges are micro-units per kWh as governed; losses are governed in
    ppm and the table keeps basis points (ppm // 100, rounded down); the loss cap
    stays below 100 % (at most 9,999 bps). Parameters absent keep the table's value.
    """
    changes: dict[str, int] = {}
    for name, attribute in GOVERNED_RATES:
        if name not in parameters:
            continue
        value = max(parameters[name], 0)
        if name.startswith("loss_"):
            value = min(value // _PPM_PER_BPS, BPS_PER_UNIT - 1)
        changes[attribute] = value
    return replace(table, **changes)  # type: ignore[arg-type]


def tree_rates(
    tree: GridTree, table: ZoneRateTable | None = None
) -> dict[tuple[str, str], ZoneRate]:
    """The rate of every ordered pair of the tree's zones, where zones joined by a link are
    neighbours (the default table unless one is given)."""
    neighbours: dict[str, set[str]] = {zone: set() for zone in tree.zones}
    for link in tree.links:
        neighbours[link.child].add(link.parent)
        neighbours[link.parent].add(link.child)
    zones = {z: Zone(z, z, neighbours=frozenset(neighbours[z])) for z in tree.zones}
    rates = table or ZoneRateTable()
    return {(a, b): rates.rate(zones[a], zones[b]) for a in zones for b in zones}
