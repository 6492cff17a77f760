"""What a run produced: one record per member per epoch, plus market facts per epoch.

A :class:`MemberEpochRecord` holds integer Wh and micro-units only. Its energy
balance closes by construction::

    production + local_bought + grid_import
        == consumption + local_sold + grid_export + battery_change + losses

Local trades are what the market matched for the member (``local_bought_wh`` is
what was delivered to it, ``local_paid`` what it paid including fees;
``local_earned`` is what it received after fees). The grid covers the rest: the
deviation of the metered net export from the traded position is exported at the
band's feed-in tariff or imported at its retail tariff, each valued with
:func:`wattx.units.trade_value`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from wattx.sim.bounds import PriceBounds
from wattx.sim.community import HouseholdKind
from wattx.sim.errors import SimulationConfigError
from wattx.sim.timegrid import TimeGrid


@dataclass(frozen=True, slots=True)
class LocalFills:
    """A member's matched trades in one epoch, summed."""

    bought_wh: int = 0
    sold_wh: int = 0
    paid: int = 0
    earned: int = 0

    def __post_init__(self) -> None:
        if min(self.bought_wh, self.sold_wh, self.paid, self.earned) < 0:
            raise SimulationConfigError("fills are non-negative amounts")

    @property
    def position_wh(self) -> int:
        """Net energy the member committed to export (negative: to import)."""
        return self.sold_wh - self.bought_wh


NO_FILLS = LocalFills()


@dataclass(frozen=True, slots=True)
class MemberEpochRecord:
    member_id: str
    epoch_id: int
    production_wh: int
    consumption_wh: int
    battery_change_wh: int
    losses_wh: int
    local_bought_wh: int
    local_sold_wh: int
    local_paid: int
    local_earned: int
    grid_import_wh: int
    grid_export_wh: int
    grid_paid: int
    grid_earned: int

    @property
    def metered_net_export_wh(self) -> int:
        """What the member's meter saw leave (negative: enter) in the epoch."""
        return self.local_sold_wh - self.local_bought_wh + self.grid_export_wh - self.grid_import_wh

    @property
    def net_cost(self) -> int:
        """Money out minus money in, micro-units."""
        return self.grid_paid + self.local_paid - self.grid_earned - self.local_earned

    @property
    def balance_residual_wh(self) -> int:
        """Zero when the record's energy balance closes."""
        inflow = self.production_wh + self.local_bought_wh + self.grid_import_wh
        outflow = (
            self.consumption_wh
            + self.local_sold_wh
            + self.grid_export_wh
            + self.battery_change_wh
            + self.losses_wh
        )
        return inflow - outflow


@dataclass(frozen=True, slots=True)
class EpochMarketRecord:
    """What the market did in one epoch (filled in by whoever runs the market)."""

    epoch_id: int
    traded_wh: int
    clearing_price: int | None
    unmatched_wh: int = 0
    trade_count: int = 0


@dataclass(slots=True)
class RunResults:
    """Everything KPIs, the balance check and the report need from one run."""

    mechanism: str
    grid: TimeGrid
    member_kinds: dict[str, HouseholdKind]
    bounds: list[PriceBounds]
    records: list[MemberEpochRecord] = field(default_factory=list)
    market: list[EpochMarketRecord] = field(default_factory=list)
    last_reference_price: int | None = None
    """The last reference price the agents quoted against (clamped to its epoch's
    bounds); the stored energy at the end of the run is valued at it."""

    def end_value_price(self) -> int:
        """Micro-units per kWh at which energy stored at the end is valued: the last
        reference price, or the last epoch's feed-in tariff when none was given."""
        if self.last_reference_price is not None:
            return self.last_reference_price
        return self.bounds[-1].feed_in if self.bounds else 0

    def records_of(self, member_id: str) -> list[MemberEpochRecord]:
        return [r for r in self.records if r.member_id == member_id]
