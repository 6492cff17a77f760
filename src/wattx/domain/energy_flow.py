"""A household's energy flow over one delivery epoch: where its energy came from
and went to, in Wh.

The meters see the connection point only, so production is the verified export
and consumption the import, as for the key figures (``wattx.domain.kpis``).
What the household traded on the local market for the epoch covers part of
each; the rest is the grid's, the counterparty of last resort:

- grid import = max(0, consumption − bought on the local market)
- grid export = max(0, production − sold on the local market)

A shortfall (sold more than was produced, bought more than was consumed) is
what delivery settles later (``docs/delivery.md``); it is reported, never
netted away here. Batteries show their last reported state of charge.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BatteryState:
    """A battery as last reported: what it holds and can hold, in Wh."""

    soc_wh: int | None
    capacity_wh: int


@dataclass(frozen=True, slots=True)
class EnergyFlow:
    epoch_id: int
    production_wh: int
    consumption_wh: int
    bought_wh: int
    sold_wh: int
    grid_import_wh: int
    grid_export_wh: int
    undelivered_sale_wh: int  # sold beyond what was produced so far
    unused_purchase_wh: int  # bought beyond what was consumed so far
    batteries: int
    battery_soc_wh: int | None  # None: no battery has reported its state of charge
    battery_capacity_wh: int

    @property
    def battery_soc_ppm(self) -> int | None:
        """State of charge of the reporting batteries, ppm, rounded down."""
        if self.battery_soc_wh is None or self.battery_capacity_wh == 0:
            return None
        return self.battery_soc_wh * 1_000_000 // self.battery_capacity_wh


def energy_flow(
    epoch_id: int,
    *,
    production_wh: int,
    consumption_wh: int,
    bought_wh: int,
    sold_wh: int,
    batteries: Sequence[BatteryState] = (),
) -> EnergyFlow:
    for name, value in (
        ("production_wh", production_wh),
        ("consumption_wh", consumption_wh),
        ("bought_wh", bought_wh),
        ("sold_wh", sold_wh),
    ):
        if value < 0:
            raise ValueError(f"{name} must not be negative")
    reporting = [b for b in batteries if b.soc_wh is not None]
    return EnergyFlow(
        epoch_id=epoch_id,
        production_wh=production_wh,
        consumption_wh=consumption_wh,
        bought_wh=bought_wh,
        sold_wh=sold_wh,
        grid_import_wh=max(0, consumption_wh - bought_wh),
        grid_export_wh=max(0, production_wh - sold_wh),
        undelivered_sale_wh=max(0, sold_wh - production_wh),
        unused_purchase_wh=max(0, bought_wh - consumption_wh),
        batteries=len(batteries),
        battery_soc_wh=sum(b.soc_wh or 0 for b in reporting) if reporting else None,
        battery_capacity_wh=sum(b.capacity_wh for b in reporting),
    )
