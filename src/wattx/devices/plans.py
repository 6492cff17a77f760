"""Delivery plans: which devices supply and take each trade, as setpoints per device.

For each trade (in ``(seq, id)`` order) the seller's devices that can supply
(battery discharge above the reserve, PV export) cover its ``qty_wh`` and the
buyer's devices that can take (battery or EV charging up to capacity, a switched
load, a relay) cover its ``delivered_wh``, each device filled up to what it can
still do in the epoch (rated power × epoch length, capacity, reserve) before
the next is used, largest headroom first. What no device can cover is the
plan's ``uncovered`` part: the trade still settles by what the meters prove.
A setpoint's power is ``ceil(energy * 3600 / seconds)`` W, never above rated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from wattx.devices.model import DeviceLimits
from wattx.domain.trades import Trade


@dataclass(frozen=True, slots=True)
class PlannedDevice:
    """A device as the planner sees it: owner, limits and state of charge."""

    id: str
    owner: str
    limits: DeviceLimits
    soc_wh: int | None


@dataclass(frozen=True, slots=True)
class Setpoint:
    """Energy a device exports (> 0) or imports (< 0) for one trade, and its power."""

    device_id: str
    trade_id: str
    energy_wh: int
    power_w: int


@dataclass(frozen=True, slots=True)
class DeliveryPlan:
    trade_id: str
    supply: tuple[Setpoint, ...]
    take: tuple[Setpoint, ...]
    uncovered_supply_wh: int
    uncovered_take_wh: int


def _power(energy_wh: int, seconds: int) -> int:
    return -(-energy_wh * 3_600 // seconds)


def build_plans(
    trades: Sequence[Trade],
    devices: Sequence[PlannedDevice],
    seconds: int,
) -> dict[str, DeliveryPlan]:
    """Plans for ``trades`` over one epoch of ``seconds`` (see module doc)."""
    supply_left: dict[str, int] = {}
    take_left: dict[str, int] = {}
    suppliers: dict[str, list[PlannedDevice]] = {}
    takers: dict[str, list[PlannedDevice]] = {}
    for d in devices:
        if d.limits.can_supply:
            supply_left[d.id] = d.limits.supply_wh(seconds, d.soc_wh)
            suppliers.setdefault(d.owner, []).append(d)
        if d.limits.can_take:
            take_left[d.id] = d.limits.take_wh(seconds, d.soc_wh)
            takers.setdefault(d.owner, []).append(d)
    # A battery both supplies and takes; its power budget is shared.
    rated: Mapping[str, int] = {d.id: d.limits.rated_power_w * seconds // 3_600 for d in devices}
    used: dict[str, int] = {}

    def fill(
        need: int, pool: list[PlannedDevice], left: dict[str, int], sign: int, trade_id: str
    ) -> tuple[list[Setpoint], int]:
        out: list[Setpoint] = []
        ranked = sorted(
            pool, key=lambda d: (-min(left[d.id], rated[d.id] - used.get(d.id, 0)), d.id)
        )
        for d in ranked:
            if need <= 0:
                break
            room = min(left[d.id], rated[d.id] - used.get(d.id, 0))
            energy = min(room, need)
            if energy <= 0:
                continue
            left[d.id] -= energy
            used[d.id] = used.get(d.id, 0) + energy
            need -= energy
            power = min(_power(energy, seconds), d.limits.rated_power_w)
            out.append(Setpoint(d.id, trade_id, sign * energy, sign * power))
        return out, need

    plans: dict[str, DeliveryPlan] = {}
    for trade in sorted(trades, key=lambda t: (t.seq, t.id)):
        supply, short_supply = fill(
            trade.qty_wh, suppliers.get(trade.seller, []), supply_left, 1, trade.id
        )
        take, short_take = fill(
            trade.delivered_wh, takers.get(trade.buyer, []), take_left, -1, trade.id
        )
        plans[trade.id] = DeliveryPlan(
            trade_id=trade.id,
            supply=tuple(supply),
            take=tuple(take),
            uncovered_supply_wh=short_supply,
            uncovered_take_wh=short_take,
        )
    return plans
