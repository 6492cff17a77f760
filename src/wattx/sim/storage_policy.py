"""Battery policies: before each epoch, decide how much to store, use, buy or sell.

A plan is two terminal energies for the coming epoch, ``charge_wh`` and
``discharge_wh`` (at most one non-zero), within what the battery can do this
step. The agent then trades the forecast net position corrected by the plan.

* :class:`StoreFirst` (home batteries): own demand is always covered from the
  battery first. Surplus is stored unless the epoch's price signal reaches
  ``sell_threshold``, in which case surplus is sold and the battery also offers
  what it holds above its reserve. The default threshold is the value of a
  stored kWh used later: the tariff's highest retail price times the round-trip
  efficiency. Local prices never exceed the band's retail, so under the default
  tariff a home battery stores; a lower threshold makes it a seller.
* :class:`PriceArbitrage` (the community battery): charges at full power when
  the price signal is at or below ``charge_below`` and discharges when it is at
  or above ``discharge_above``; those prices also cap its bids and floor its
  asks, so it never buys dear or sells cheap.

The price signal is the reference price when the market publishes one,
otherwise the midpoint of the epoch's tariff bounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from wattx.domain.zones import Tariff
from wattx.sim.battery import PPM, Battery, BatterySpec
from wattx.sim.errors import SimulationConfigError


@dataclass(frozen=True, slots=True)
class StoragePlan:
    charge_wh: int = 0
    discharge_wh: int = 0
    bid_cap: int | None = None
    ask_floor: int | None = None


class StoragePolicy(Protocol):
    def plan(
        self, forecast_net_wh: int, battery: Battery, step_s: int, price_signal: int
    ) -> StoragePlan: ...


def storage_value(tariff: Tariff, spec: BatterySpec) -> int:
    """Micro-units per kWh a stored kWh is worth: the dearest retail times the round trip."""
    top_retail = max(band.retail for band in tariff.bands)
    round_trip = spec.charge_efficiency_ppm * spec.discharge_efficiency_ppm // PPM
    return top_retail * round_trip // PPM


@dataclass(frozen=True, slots=True)
class StoreFirst:
    sell_threshold: int
    reserve_ppm: int = 300_000

    def __post_init__(self) -> None:
        if not 0 <= self.reserve_ppm <= PPM:
            raise SimulationConfigError("the reserve is a share of capacity in ppm")

    def plan(
        self, forecast_net_wh: int, battery: Battery, step_s: int, price_signal: int
    ) -> StoragePlan:
        selling = price_signal >= self.sell_threshold
        if forecast_net_wh > 0 and not selling:
            return StoragePlan(charge_wh=min(forecast_net_wh, battery.chargeable_wh(step_s)))
        own_use = min(max(-forecast_net_wh, 0), battery.dischargeable_wh(step_s))
        if not selling:
            return StoragePlan(discharge_wh=own_use)
        reserve_wh = battery.spec.capacity_wh * self.reserve_ppm // PPM
        above_reserve = max(0, battery.soc_wh - max(reserve_wh, battery.spec.soc_min_wh))
        saleable = above_reserve * battery.spec.discharge_efficiency_ppm // PPM
        return StoragePlan(
            discharge_wh=min(battery.dischargeable_wh(step_s), max(own_use, saleable))
        )


@dataclass(frozen=True, slots=True)
class PriceArbitrage:
    charge_below: int
    discharge_above: int

    def __post_init__(self) -> None:
        if self.charge_below >= self.discharge_above:
            raise SimulationConfigError("arbitrage needs charge_below < discharge_above")

    def plan(
        self, forecast_net_wh: int, battery: Battery, step_s: int, price_signal: int
    ) -> StoragePlan:
        if price_signal <= self.charge_below:
            return StoragePlan(charge_wh=battery.chargeable_wh(step_s), bid_cap=self.charge_below)
        if price_signal >= self.discharge_above:
            return StoragePlan(
                discharge_wh=battery.dischargeable_wh(step_s), ask_floor=self.discharge_above
            )
        return StoragePlan()


def default_arbitrage(tariff: Tariff) -> PriceArbitrage:
    """Charge in the cheapest third of the tariff's price range, sell in the dearest third."""
    low = min(band.feed_in for band in tariff.bands)
    high = max(band.retail for band in tariff.bands)
    third = (high - low) // 3
    return PriceArbitrage(charge_below=low + third, discharge_above=high - third)
