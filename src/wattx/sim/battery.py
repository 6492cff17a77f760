"""A battery with integer Wh state whose energy balance closes exactly.

Efficiency is split into a charge and a discharge efficiency (ppm); a round-trip
efficiency ``r`` gives both as ``isqrt(r)`` in ppm. On every step:

* charging accepts ``accepted_wh`` at the terminals and stores
  ``accepted * charge_eff // 10**6``; the rest is a loss;
* discharging draws ``drawn_wh`` from the cells and delivers
  ``drawn * discharge_eff // 10**6``; the rest is a loss.

So ``accepted - delivered == soc change + losses`` holds to the Wh, always.
Power limits cap the terminal energy per step (``power_w * step_s // 3600``);
the state of charge stays within ``[soc_min_wh, soc_max_wh]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import isqrt

from wattx.sim.errors import SimulationConfigError

PPM = 1_000_000


@dataclass(frozen=True, slots=True)
class BatterySpec:
    capacity_wh: int
    max_charge_w: int
    max_discharge_w: int
    charge_efficiency_ppm: int
    discharge_efficiency_ppm: int
    soc_min_wh: int
    soc_max_wh: int

    def __post_init__(self) -> None:
        if self.capacity_wh <= 0 or self.max_charge_w <= 0 or self.max_discharge_w <= 0:
            raise SimulationConfigError("battery capacity and power limits must be positive")
        if not 0 <= self.soc_min_wh < self.soc_max_wh <= self.capacity_wh:
            raise SimulationConfigError("need 0 <= soc_min < soc_max <= capacity")
        for efficiency in (self.charge_efficiency_ppm, self.discharge_efficiency_ppm):
            if not 0 < efficiency <= PPM:
                raise SimulationConfigError("efficiencies must be in (0, 1]", ppm=efficiency)

    @classmethod
    def from_round_trip(
        cls,
        capacity_wh: int,
        power_w: int,
        round_trip_ppm: int = 900_000,
        soc_min_ppm: int = 50_000,
        soc_max_ppm: int = 950_000,
    ) -> BatterySpec:
        """Symmetric limits; the round trip split evenly between charging and discharging."""
        if not 0 < round_trip_ppm <= PPM:
            raise SimulationConfigError("round-trip efficiency must be in (0, 1]")
        one_way = isqrt(round_trip_ppm * PPM)
        return cls(
            capacity_wh=capacity_wh,
            max_charge_w=power_w,
            max_discharge_w=power_w,
            charge_efficiency_ppm=one_way,
            discharge_efficiency_ppm=one_way,
            soc_min_wh=capacity_wh * soc_min_ppm // PPM,
            soc_max_wh=capacity_wh * soc_max_ppm // PPM,
        )

    def max_charge_wh(self, step_s: int) -> int:
        return self.max_charge_w * step_s // 3600

    def max_discharge_wh(self, step_s: int) -> int:
        return self.max_discharge_w * step_s // 3600


@dataclass(frozen=True, slots=True)
class BatteryFlow:
    """One step's exchange: terminal energies in/out, change of state, losses."""

    accepted_wh: int = 0
    delivered_wh: int = 0
    soc_change_wh: int = 0
    loss_wh: int = 0


@dataclass(slots=True)
class Battery:
    spec: BatterySpec
    soc_wh: int

    def __post_init__(self) -> None:
        if not self.spec.soc_min_wh <= self.soc_wh <= self.spec.soc_max_wh:
            raise SimulationConfigError("initial state of charge outside the SoC bounds")

    def chargeable_wh(self, step_s: int) -> int:
        """Most terminal energy this step can accept (power and headroom)."""
        headroom = self.spec.soc_max_wh - self.soc_wh
        by_room = headroom * PPM // self.spec.charge_efficiency_ppm
        return min(self.spec.max_charge_wh(step_s), by_room)

    def dischargeable_wh(self, step_s: int) -> int:
        """Most terminal energy this step can deliver (power and stored energy)."""
        available = self.soc_wh - self.spec.soc_min_wh
        by_energy = available * self.spec.discharge_efficiency_ppm // PPM
        return min(self.spec.max_discharge_wh(step_s), by_energy)

    def charge(self, offered_wh: int, step_s: int) -> BatteryFlow:
        """Accept up to ``offered_wh`` at the terminals."""
        accepted = max(0, min(offered_wh, self.chargeable_wh(step_s)))
        stored = accepted * self.spec.charge_efficiency_ppm // PPM
        self.soc_wh += stored
        return BatteryFlow(accepted_wh=accepted, soc_change_wh=stored, loss_wh=accepted - stored)

    def discharge(self, requested_wh: int, step_s: int) -> BatteryFlow:
        """Deliver up to ``requested_wh`` at the terminals."""
        delivered = max(0, min(requested_wh, self.dischargeable_wh(step_s)))
        # The fewest cell Wh that deliver ``delivered`` once floored by the efficiency.
        drawn = -(-delivered * PPM // self.spec.discharge_efficiency_ppm)
        self.soc_wh -= drawn
        return BatteryFlow(delivered_wh=delivered, soc_change_wh=-drawn, loss_wh=drawn - delivered)
