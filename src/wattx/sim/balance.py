"""The energy balance of a run, checked to the watt-hour.

For every member and epoch, and for the community as a whole::

    production + imports == consumption + exports + battery change + losses

Member level: imports are local purchases plus grid imports, exports local
sales plus grid exports. Community level: only the grid crosses the boundary,
and energy sold locally but not delivered (a cross-zone loss) counts as a
network loss. Every term is an integer, so "closes" means equal, not close.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from wattx.sim.errors import EnergyBalanceError
from wattx.sim.results import RunResults


@dataclass(frozen=True, slots=True)
class EnergyBalance:
    production_wh: int
    grid_import_wh: int
    consumption_wh: int
    grid_export_wh: int
    battery_change_wh: int
    battery_losses_wh: int
    network_losses_wh: int

    @property
    def inflow_wh(self) -> int:
        return self.production_wh + self.grid_import_wh

    @property
    def outflow_wh(self) -> int:
        return (
            self.consumption_wh
            + self.grid_export_wh
            + self.battery_change_wh
            + self.battery_losses_wh
            + self.network_losses_wh
        )

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "inflow_wh": self.inflow_wh, "outflow_wh": self.outflow_wh}

    def describe(self) -> str:
        return (
            f"production {self.production_wh} + grid import {self.grid_import_wh} = "
            f"{self.inflow_wh} Wh; consumption {self.consumption_wh} + grid export "
            f"{self.grid_export_wh} + battery change {self.battery_change_wh} + battery losses "
            f"{self.battery_losses_wh} + network losses {self.network_losses_wh} = "
            f"{self.outflow_wh} Wh"
        )


def check_energy_balance(results: RunResults) -> EnergyBalance:
    """The community balance; raises :class:`EnergyBalanceError` if any level fails to close."""
    for record in results.records:
        if record.balance_residual_wh != 0:
            raise EnergyBalanceError(
                "a member's energy balance does not close",
                member_id=record.member_id,
                epoch_id=record.epoch_id,
                residual_wh=record.balance_residual_wh,
            )
    sold = sum(r.local_sold_wh for r in results.records)
    bought = sum(r.local_bought_wh for r in results.records)
    if bought > sold:
        raise EnergyBalanceError(
            "more energy bought locally than sold", bought_wh=bought, sold_wh=sold
        )
    balance = EnergyBalance(
        production_wh=sum(r.production_wh for r in results.records),
        grid_import_wh=sum(r.grid_import_wh for r in results.records),
        consumption_wh=sum(r.consumption_wh for r in results.records),
        grid_export_wh=sum(r.grid_export_wh for r in results.records),
        battery_change_wh=sum(r.battery_change_wh for r in results.records),
        battery_losses_wh=sum(r.losses_wh for r in results.records),
        network_losses_wh=sold - bought,
    )
    if balance.inflow_wh != balance.outflow_wh:
        raise EnergyBalanceError(
            "the community's energy balance does not close",
            inflow_wh=balance.inflow_wh,
            outflow_wh=balance.outflow_wh,
        )
    return balance
