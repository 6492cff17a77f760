"""Delivery plans: which devices supply and take each trade, as setpoints per device.

For each trade (in ``(seq, id)`` order) the seller's devices that can supply
(battery discharge above the reserve, PV export) cover its ``qty_wh`` and the
buyer's devices that can take (battery or EV charging up to capacity, a switched
load, a relay) cover its ``delivered_wh``, each device filled up to what it can
still do in the epoch (rated power × epoch length, capacity, reserve) before
the next is used, largest headroom first. What no device can cover is the
plan's ``uncovered`` part: the trade still settles by what the meters prove.
A setpoint's power is ``ceil(energy * 3600 / seconds)`` W, never above rated.

A device may also have a :class:`Budget` for the epoch from a schedule (a
battery's day-ahead schedule, :func:`scheduled_budget`): the plan never asks
it to supply more than the budget's ``supply_wh`` or take more than its
``take_wh``, on top of its limits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

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


@dataclass(frozen=True, slots=True)
class Budget:
    """The most a schedule lets a device supply and take in the epoch (Wh)."""

    supply_wh: int
    take_wh: int


@dataclass(frozen=True, slots=True)
class ScheduledSlot:
    """One slot of a stored day-ahead schedule."""

    charge_wh: int
    discharge_wh: int
    soc_wh: int


def scheduled_budget(
    starts_at: datetime,
    slot_s: int,
    slots: Sequence[ScheduledSlot],
    epoch_start: datetime,
    seconds: int,
) -> Budget | None:
    """The budget a day-ahead schedule gives a battery for the epoch ``[epoch_start,
    epoch_start + seconds)``: the discharge of the schedule's slots that begin in the
    epoch (what it may supply) and their charge (what it may take). ``None`` when no
    slot begins in the epoch: the schedule does not cover it and only the limits apply.
    """
    end = epoch_start + timedelta(seconds=seconds)
    inside = [
        slot
        for k, slot in enumerate(slots)
        if epoch_start <= starts_at + timedelta(seconds=k * slot_s) < end
    ]
    if not inside:
        return None
    return Budget(
        supply_wh=sum(s.discharge_wh for s in inside), take_wh=sum(s.charge_wh for s in inside)
    )


def _power(energy_wh: int, seconds: int) -> int:
    return -(-energy_wh * 3_600 // seconds)


def build_plans(
    trades: Sequence[Trade],
    devices: Sequence[PlannedDevice],
    seconds: int,
    budgets: Mapping[str, Budget] | None = None,
) -> dict[str, DeliveryPlan]:
    """Plans for ``trades`` over one epoch of ``seconds`` (see module doc); ``budgets``
    caps the devices that have a schedule for the epoch."""
    budgets = budgets or {}
    supply_left: dict[str, int] = {}
    take_left: dict[str, int] = {}
    suppliers: dict[str, list[PlannedDevice]] = {}
    takers: dict[str, list[PlannedDevice]] = {}
    for d in devices:
        budget = budgets.get(d.id)
        if d.limits.can_supply:
            supply_left[d.id] = d.limits.supply_wh(seconds, d.soc_wh)
            if budget is not None:
                supply_left[d.id] = max(0, min(supply_left[d.id], budget.supply_wh))
            suppliers.setdefault(d.owner, []).append(d)
        if d.limits.can_take:
            take_left[d.id] = d.limits.take_wh(seconds, d.soc_wh)
            if budget is not None:
                take_left[d.id] = max(0, min(take_left[d.id], budget.take_wh))
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
