"""The pairing scheduler: move energy from a zone's fullest batteries to its emptiest.

Pure and integer. A battery's *fill* is its state of charge above its reserve
as a share of its usable capacity (``capacity - reserve``), in basis points.
The zone's *mean fill* is the sum of every battery's energy above reserve over
the sum of their usable capacities. One slot is planned at a time:

1. donors are the batteries whose fill is at least ``high_bps``, fullest
   first; receivers those whose fill is at most ``low_bps``, emptiest first;
2. two pointers walk the lists: the current donor gives the current receiver
   as much as both can (see below), and whichever is used up is passed over;
3. the walk stops when the fill of the current donor exceeds the fill of the
   current receiver by no more than ``dead_band_bps`` (the lists are sorted,
   so every remaining pair is closer still), or when either list runs out;
4. a transfer smaller than ``min_transfer_wh`` is not made.

A donor gives down to, never below, its level at the zone's mean fill (rounded
up to a Wh) and never below its reserve; a receiver takes up to, never above,
its level at the mean fill (rounded down) and never above its capacity. Each
battery moves at most ``rated_power_w * slot_s / 3600`` Wh (rounded down) in the
slot, across all of its transfers. So energy is conserved, no battery both gives
and takes, and the spread of fills never widens. Conversion losses are the
devices' business: a transfer is the energy that leaves the donor.
"""

from __future__ import annotations

from dataclasses import dataclass

from wattx.units import BPS_PER_UNIT

SECONDS_PER_HOUR = 3_600


class PairingInputError(ValueError):
    """A battery or a parameter the pairing scheduler cannot use."""


@dataclass(frozen=True, slots=True)
class Battery:
    """A battery of the zone as the scheduler sees it (all integers)."""

    id: str
    soc_wh: int
    capacity_wh: int
    reserve_wh: int
    rated_power_w: int

    @property
    def usable_wh(self) -> int:
        return self.capacity_wh - self.reserve_wh

    @property
    def fill_bps(self) -> int:
        """Energy above reserve as a share of usable capacity, in basis points (rounded down)."""
        return (self.soc_wh - self.reserve_wh) * BPS_PER_UNIT // self.usable_wh


@dataclass(frozen=True, slots=True)
class PairingParams:
    """Thresholds (basis points of usable capacity), dead band and the slot's length."""

    high_bps: int = 6_000
    low_bps: int = 4_000
    dead_band_bps: int = 1_000
    min_transfer_wh: int = 1
    slot_s: int = 900


@dataclass(frozen=True, slots=True)
class Transfer:
    """``qty_wh`` to move from battery ``source`` to battery ``sink`` in the slot."""

    source: str
    sink: str
    qty_wh: int


def _validate(batteries: list[Battery], params: PairingParams) -> None:
    if not 0 <= params.low_bps <= params.high_bps <= BPS_PER_UNIT:
        raise PairingInputError("thresholds must satisfy 0 <= low_bps <= high_bps <= 10000")
    if params.dead_band_bps < 0 or params.min_transfer_wh < 1 or params.slot_s < 1:
        raise PairingInputError(
            "dead_band_bps must be >= 0, min_transfer_wh and slot_s must be >= 1"
        )
    seen: set[str] = set()
    for b in batteries:
        if b.id in seen:
            raise PairingInputError(f"battery {b.id!r} appears twice")
        seen.add(b.id)
        if not 0 <= b.reserve_wh < b.capacity_wh:
            raise PairingInputError(f"battery {b.id!r}: need 0 <= reserve_wh < capacity_wh")
        if not 0 <= b.soc_wh <= b.capacity_wh:
            raise PairingInputError(f"battery {b.id!r}: need 0 <= soc_wh <= capacity_wh")
        if b.rated_power_w < 0:
            raise PairingInputError(f"battery {b.id!r}: rated_power_w must be >= 0")


def slot_energy_wh(rated_power_w: int, slot_s: int) -> int:
    """The most energy a battery of ``rated_power_w`` moves in ``slot_s`` seconds (rounded down)."""
    return rated_power_w * slot_s // SECONDS_PER_HOUR


def pair_batteries(batteries: list[Battery], params: PairingParams | None = None) -> list[Transfer]:
    """Plan one slot of transfers between the batteries of one zone (see the module doc)."""
    params = params or PairingParams()
    _validate(batteries, params)
    if not batteries:
        return []
    # The zone's mean fill as the exact fraction above / usable.
    above = sum(max(0, b.soc_wh - b.reserve_wh) for b in batteries)
    usable = sum(b.usable_wh for b in batteries)

    def floor_level(b: Battery) -> int:
        return b.reserve_wh + b.usable_wh * above // usable

    def ceil_level(b: Battery) -> int:
        return b.reserve_wh - (-b.usable_wh * above // usable)

    give: dict[str, int] = {}
    take: dict[str, int] = {}
    for b in batteries:
        budget = slot_energy_wh(b.rated_power_w, params.slot_s)
        give[b.id] = max(0, min(b.soc_wh - ceil_level(b), budget))
        take[b.id] = max(0, min(floor_level(b) - b.soc_wh, budget))
    donors = sorted(
        (b for b in batteries if b.fill_bps >= params.high_bps and give[b.id] > 0),
        key=lambda b: (-b.fill_bps, b.id),
    )
    receivers = sorted(
        (b for b in batteries if b.fill_bps <= params.low_bps and take[b.id] > 0),
        key=lambda b: (b.fill_bps, b.id),
    )
    transfers: list[Transfer] = []
    i = j = 0
    while i < len(donors) and j < len(receivers):
        donor, receiver = donors[i], receivers[j]
        if donor.fill_bps - receiver.fill_bps <= params.dead_band_bps:
            break
        qty = min(give[donor.id], take[receiver.id])
        if qty >= params.min_transfer_wh:
            transfers.append(Transfer(donor.id, receiver.id, qty))
            give[donor.id] -= qty
            take[receiver.id] -= qty
        # Pass over whichever side can no longer make a transfer worth making (qty is the
        # smaller of the two, so when it is too small at least one pointer moves).
        if give[donor.id] < params.min_transfer_wh:
            i += 1
        if take[receiver.id] < params.min_transfer_wh:
            j += 1
    return transfers


def apply_transfers(batteries: list[Battery], transfers: list[Transfer]) -> list[Battery]:
    """The batteries after the transfers (for checks and for simulating the next slot)."""
    delta: dict[str, int] = {b.id: 0 for b in batteries}
    for t in transfers:
        delta[t.source] -= t.qty_wh
        delta[t.sink] += t.qty_wh
    return [
        Battery(b.id, b.soc_wh + delta[b.id], b.capacity_wh, b.reserve_wh, b.rated_power_w)
        for b in batteries
    ]
