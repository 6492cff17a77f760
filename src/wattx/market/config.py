"""Market configuration: zones, schedule, fee, zone rates, mechanisms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from wattx.domain import EpochSchedule, ValidationError, Zone
from wattx.grid.model import Direction, GridLink, GridTree
from wattx.market.mechanism import Mechanism
from wattx.market.rates import ZoneRateTable
from wattx.units import BPS_PER_UNIT


@dataclass(frozen=True)
class MarketConfig:
    """Everything the engine needs to know, fixed for its lifetime.

    ``mechanisms`` maps zone ids to a :class:`Mechanism`; a zone not listed
    runs a continuous market. With ``cross_zone`` a continuous buyer may match
    sellers of other continuous zones by landed cost. When any zone names a
    ``parent``, the zones must form one grid tree (:attr:`grid`) and the call
    auctions of the market clear together over it (the coupled auction).
    """

    zones: Mapping[str, Zone]
    schedule: EpochSchedule = field(default_factory=EpochSchedule)
    fee_bps: int = 25
    fee_changes: Mapping[int, int] = field(default_factory=dict)
    """Epoch id → the fee from that epoch on (governance's executed values); before the
    first change, ``fee_bps``."""
    rates: ZoneRateTable = field(default_factory=ZoneRateTable)
    rate_changes: Mapping[int, ZoneRateTable] = field(default_factory=dict)
    """Epoch id → the zone-rate table from that epoch on (governance's executed values);
    before the first change, ``rates``."""
    mechanisms: Mapping[str, Mechanism] = field(default_factory=dict)
    cross_zone: bool = True
    capacity_changes: Mapping[int, Mapping[tuple[str, Direction], int]] = field(
        default_factory=dict
    )
    """Epoch id → the governed link capacities from that epoch on, per (zone, direction):
    ``down`` is what may enter the zone (its import), ``up`` what may leave it (its
    export), Wh per epoch. A capacity not listed is the zone's configured one."""
    margin_changes: Mapping[int, BoundMargins] = field(default_factory=dict)
    """Epoch id → the price-bound margins from that epoch on (governance's executed
    values); before the first change, none (the bounds are the tariffs)."""

    def __post_init__(self) -> None:
        if not self.zones:
            raise ValidationError("a market needs at least one zone")
        for key, zone in self.zones.items():
            if key != zone.id:
                raise ValidationError("zones must be keyed by their id", key=key, zone=zone.id)
        unknown = set(self.mechanisms) - set(self.zones)
        if unknown:
            raise ValidationError("mechanism given for unknown zones", zones=sorted(unknown))
        for fee in (self.fee_bps, *self.fee_changes.values()):
            if not 0 <= fee < BPS_PER_UNIT:
                raise ValidationError("fee must be in [0, 10000) bps", fee_bps=fee)

        object.__setattr__(self, "grid", grid_of(self.zones))

    grid: GridTree | None = field(default=None, init=False)
    """The zones' grid tree, or None when no zone names a parent."""

    def fee_for(self, epoch_id: int) -> int:
        """The fee, in basis points, of trades delivered in ``epoch_id``."""
        return fee_at(self.fee_bps, self.fee_changes, epoch_id)

    def rates_for(self, epoch_id: int) -> ZoneRateTable:
        """The zone-rate table of trades delivered in ``epoch_id``."""
        starts = [start for start in self.rate_changes if start <= epoch_id]
        return self.rate_changes[max(starts)] if starts else self.rates

    def mechanism(self, zone: str) -> Mechanism:
        return self.mechanisms.get(zone, Mechanism.CONTINUOUS)

    def capacity_for(
        self, zone: str, direction: Direction, epoch_id: int, configured: int | None
    ) -> int | None:
        """The capacity of ``zone``'s link in ``direction`` for ``epoch_id``: governed if
        the epoch's set has it, else ``configured``."""
        starts = [start for start in self.capacity_changes if start <= epoch_id]
        if not starts:
            return configured
        return self.capacity_changes[max(starts)].get((zone, direction), configured)

    def margins_for(self, epoch_id: int) -> BoundMargins:
        """The price-bound margins of orders for ``epoch_id``."""
        starts = [start for start in self.margin_changes if start <= epoch_id]
        return self.margin_changes[max(starts)] if starts else BoundMargins()


@dataclass(frozen=True, slots=True)
class BoundMargins:
    """How far inside the tariffs an epoch's prices must stay, in basis points of the
    spread between the feed-in and the retail tariff (governed:
    ``price_floor_margin_bps``, ``price_ceiling_margin_bps``).

    The lowest price is ``feed_in + ceil(spread × floor ÷ 10,000)`` and the highest
    ``retail - ceil(spread × ceiling ÷ 10,000)``: the margins only ever narrow the
    tariffs' range, so no one trades worse than with the grid. Each margin is at most
    5,000 (half the spread), so the range is never empty.
    """

    floor_bps: int = 0
    ceiling_bps: int = 0

    def __post_init__(self) -> None:
        for margin in (self.floor_bps, self.ceiling_bps):
            if not 0 <= margin <= MAX_MARGIN_BPS:
                raise ValidationError("a bound margin must be in [0, 5000] bps", margin_bps=margin)

    def bounds(self, feed_in: int, retail: int) -> tuple[int, int]:
        """The lowest and highest limit price allowed between these tariffs.

        The floor's margin is rounded up and the ceiling's down: with both at 5,000
        and an odd spread, rounding both up would leave no price between them."""
        spread = max(retail - feed_in, 0)
        return (
            feed_in + -(-spread * self.floor_bps // BPS_PER_UNIT),
            retail - spread * self.ceiling_bps // BPS_PER_UNIT,
        )


MAX_MARGIN_BPS = 5_000


def fee_at(default_bps: int, changes: Mapping[int, int], epoch_id: int) -> int:
    """The fee of ``epoch_id``: that of the latest change from an epoch at or before it."""
    if not changes:  # the usual case, asked once or more per order
        return default_bps
    starts = [start for start in changes if start <= epoch_id]
    return changes[max(starts)] if starts else default_bps


def grid_of(zones: Mapping[str, Zone]) -> GridTree | None:
    """The tree the zones' ``parent`` fields form (validated), or None if none has one.

    A zone's link to its parent carries the zone's import and export capacities.
    """
    if all(zone.parent is None for zone in zones.values()):
        return None
    links = [
        GridLink(zone.id, zone.parent, zone.import_capacity_wh, zone.export_capacity_wh)
        for zone in zones.values()
        if zone.parent is not None
    ]
    return GridTree.build(zones, links)
