"""Device kinds, their limits, and the setpoints a plan may give them.

Power is in W (positive: the device exports into the site, i.e. discharges or
generates; negative: it imports, i.e. charges or consumes), energy in Wh.
A device with storage (battery, EV charger's car) has a capacity and a reserve
the owner sets: a plan never takes its state of charge below the reserve.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from wattx.devices.errors import InvalidDeviceError, SetpointOutOfLimitsError


class DeviceKind(StrEnum):
    BATTERY = "battery"
    PV_INVERTER = "pv_inverter"
    EV_CHARGER = "ev_charger"
    SWITCHABLE_LOAD = "switchable_load"
    RELAY = "relay"


class DeviceProtocol(StrEnum):
    MQTT = "mqtt"
    MODBUS_SUNSPEC = "modbus_sunspec"
    OCPP = "ocpp"


STORAGE_KINDS = frozenset({DeviceKind.BATTERY, DeviceKind.EV_CHARGER})
"""Kinds that have a capacity (and so a reserve)."""

SUPPLY_KINDS = frozenset({DeviceKind.BATTERY, DeviceKind.PV_INVERTER})
"""Kinds that can supply a trade (discharge, export, curtailment lifted)."""

TAKE_KINDS = frozenset(
    {DeviceKind.BATTERY, DeviceKind.EV_CHARGER, DeviceKind.SWITCHABLE_LOAD, DeviceKind.RELAY}
)
"""Kinds that can take a trade (charge, draw, switch a load on)."""

MAX_RATED_POWER_W = 10_000_000
MAX_CAPACITY_WH = 100_000_000


@dataclass(frozen=True, slots=True)
class DeviceLimits:
    """What a device can do: rated power (W), capacity and reserve (Wh; 0 without storage)."""

    kind: DeviceKind
    rated_power_w: int
    capacity_wh: int = 0
    reserve_wh: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.rated_power_w <= MAX_RATED_POWER_W:
            raise InvalidDeviceError(
                f"rated power must be in 1..{MAX_RATED_POWER_W} W",
                rated_power_w=self.rated_power_w,
            )
        if self.kind in STORAGE_KINDS:
            if not 0 < self.capacity_wh <= MAX_CAPACITY_WH:
                raise InvalidDeviceError(
                    f"a {self.kind} needs a capacity in 1..{MAX_CAPACITY_WH} Wh",
                    capacity_wh=self.capacity_wh,
                )
            if not 0 <= self.reserve_wh <= self.capacity_wh:
                raise InvalidDeviceError(
                    "the reserve must be between 0 and the capacity",
                    reserve_wh=self.reserve_wh,
                    capacity_wh=self.capacity_wh,
                )
        elif self.capacity_wh or self.reserve_wh:
            raise InvalidDeviceError(
                f"a {self.kind} has no capacity or reserve",
                capacity_wh=self.capacity_wh,
                reserve_wh=self.reserve_wh,
            )

    @property
    def can_supply(self) -> bool:
        return self.kind in SUPPLY_KINDS

    @property
    def can_take(self) -> bool:
        return self.kind in TAKE_KINDS

    def supply_wh(self, seconds: int, soc_wh: int | None) -> int:
        """The most it can export over ``seconds`` (storage: above the reserve)."""
        if not self.can_supply:
            return 0
        energy = self.rated_power_w * seconds // 3_600
        if self.kind is DeviceKind.BATTERY:
            return max(0, min(energy, (soc_wh if soc_wh is not None else 0) - self.reserve_wh))
        return energy

    def take_wh(self, seconds: int, soc_wh: int | None) -> int:
        """The most it can import over ``seconds`` (storage: up to its capacity)."""
        if not self.can_take:
            return 0
        energy = self.rated_power_w * seconds // 3_600
        if self.kind in STORAGE_KINDS:
            room = self.capacity_wh - (soc_wh if soc_wh is not None else self.capacity_wh)
            return max(0, min(energy, room))
        return energy

    def check_setpoint(self, power_w: int, seconds: int, soc_wh: int | None) -> None:
        """Refuse a setpoint beyond rated power, or one that would cross reserve/capacity.

        ``power_w`` > 0 exports (discharge/generate), < 0 imports.
        """
        if abs(power_w) > self.rated_power_w:
            raise SetpointOutOfLimitsError(
                f"{power_w} W exceeds the rated {self.rated_power_w} W",
                power_w=power_w,
                rated_power_w=self.rated_power_w,
            )
        if power_w > 0 and not self.can_supply:
            raise SetpointOutOfLimitsError(f"a {self.kind} cannot export", power_w=power_w)
        if power_w < 0 and not self.can_take:
            raise SetpointOutOfLimitsError(f"a {self.kind} cannot import", power_w=power_w)
        energy = abs(power_w) * seconds // 3_600
        if power_w > 0 and energy > self.supply_wh(seconds, soc_wh):
            raise SetpointOutOfLimitsError(
                "the export would take the state of charge below the reserve",
                power_w=power_w,
                reserve_wh=self.reserve_wh,
                soc_wh=soc_wh,
            )
        if power_w < 0 and energy > self.take_wh(seconds, soc_wh):
            raise SetpointOutOfLimitsError(
                "the import would exceed the capacity",
                power_w=power_w,
                capacity_wh=self.capacity_wh,
                soc_wh=soc_wh,
            )
