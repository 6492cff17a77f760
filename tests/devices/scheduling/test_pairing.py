"""The pairing scheduler: examples and properties (conservation, limits, thresholds)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wattx.devices.scheduling.pairing import (
    Battery,
    PairingInputError,
    PairingParams,
    apply_transfers,
    pair_batteries,
    slot_energy_wh,
)


@st.composite
def batteries(draw: st.DrawFn) -> list[Battery]:
    n = draw(st.integers(0, 12))
    out = []
    for k in range(n):
        capacity = draw(st.integers(2, 50_000))
        reserve = draw(st.integers(0, capacity - 1))
        soc = draw(st.integers(0, capacity))
        power = draw(st.integers(0, 20_000))
        out.append(Battery(f"b{k}", soc, capacity, reserve, power))
    return out


@st.composite
def params(draw: st.DrawFn) -> PairingParams:
    low = draw(st.integers(0, 10_000))
    high = draw(st.integers(low, 10_000))
    return PairingParams(
        high_bps=high,
        low_bps=low,
        dead_band_bps=draw(st.integers(0, 5_000)),
        min_transfer_wh=draw(st.integers(1, 500)),
        slot_s=draw(st.sampled_from([60, 900, 3_600])),
    )


def test_fullest_pays_emptiest_first() -> None:
    zone = [
        Battery("full", 9_000, 10_000, 1_000, 40_000),
        Battery("mid", 5_500, 10_000, 1_000, 40_000),
        Battery("empty", 1_000, 10_000, 1_000, 40_000),
        Battery("low", 3_000, 10_000, 1_000, 40_000),
    ]
    transfers = pair_batteries(zone)
    # Mean fill: (8000 + 4500 + 0 + 2000) / 36000 → level 1000 + 9000*14500/36000 = 4625.
    assert [(t.source, t.sink, t.qty_wh) for t in transfers] == [
        ("full", "empty", 3_625),
        ("full", "low", 750),
    ]


def test_rated_power_limits_a_slot() -> None:
    zone = [Battery("a", 10_000, 10_000, 0, 4_000), Battery("b", 0, 10_000, 0, 40_000)]
    [t] = pair_batteries(zone, PairingParams(slot_s=900))
    assert t.qty_wh == slot_energy_wh(4_000, 900) == 1_000


def test_dead_band_stops_small_differences() -> None:
    zone = [Battery("a", 6_500, 10_000, 0, 4_000), Battery("b", 3_600, 10_000, 0, 4_000)]
    assert pair_batteries(zone, PairingParams(dead_band_bps=3_000)) == []
    assert pair_batteries(zone, PairingParams(dead_band_bps=2_000)) != []


@pytest.mark.parametrize(
    ("battery", "params"),
    [
        (Battery("x", 5, 10, 10, 1), PairingParams()),
        (Battery("x", 11, 10, 0, 1), PairingParams()),
        (Battery("x", 5, 10, 0, -1), PairingParams()),
        (Battery("x", 5, 10, 0, 1), PairingParams(high_bps=1_000, low_bps=2_000)),
        (Battery("x", 5, 10, 0, 1), PairingParams(min_transfer_wh=0)),
    ],
)
def test_bad_input_is_refused(battery: Battery, params: PairingParams) -> None:
    with pytest.raises(PairingInputError):
        pair_batteries([battery], params)


def test_duplicate_ids_are_refused() -> None:
    b = Battery("x", 5, 10, 0, 1)
    with pytest.raises(PairingInputError, match="twice"):
        pair_batteries([b, b])


@given(batteries(), params())
def test_transfers_respect_every_limit(zone: list[Battery], p: PairingParams) -> None:
    transfers = pair_batteries(zone, p)
    by_id = {b.id: b for b in zone}
    after = {b.id: b for b in apply_transfers(zone, transfers)}
    sources = {t.source for t in transfers}
    sinks = {t.sink for t in transfers}
    assert not sources & sinks
    moved: dict[str, int] = {}
    for t in transfers:
        assert t.qty_wh >= p.min_transfer_wh
        assert by_id[t.source].fill_bps >= p.high_bps
        assert by_id[t.sink].fill_bps <= p.low_bps
        assert by_id[t.source].fill_bps - by_id[t.sink].fill_bps > p.dead_band_bps
        moved[t.source] = moved.get(t.source, 0) + t.qty_wh
        moved[t.sink] = moved.get(t.sink, 0) + t.qty_wh
    for bid, qty in moved.items():
        assert qty <= slot_energy_wh(by_id[bid].rated_power_w, p.slot_s)
    # Conservation, reserve and capacity.
    assert sum(b.soc_wh for b in after.values()) == sum(b.soc_wh for b in zone)
    for bid in sources:
        assert after[bid].soc_wh >= by_id[bid].reserve_wh
    for bid in sinks:
        assert after[bid].soc_wh <= by_id[bid].capacity_wh
    # The spread of fills never widens.
    if zone:
        before_fills = [b.fill_bps for b in zone]
        after_fills = [b.fill_bps for b in after.values()]
        assert max(after_fills) <= max(before_fills)
        assert min(after_fills) >= min(before_fills)


@given(batteries())
def test_repeated_slots_converge(zone: list[Battery]) -> None:
    """Run the scheduler slot after slot: it stops moving energy (no oscillation)."""
    p = PairingParams(dead_band_bps=500)
    # Powerful enough to move any battery's energy in a few slots.
    zone = [Battery(b.id, b.soc_wh, b.capacity_wh, b.reserve_wh, 400_000) for b in zone]
    for _ in range(200):
        transfers = pair_batteries(zone, p)
        if not transfers:
            break
        zone = apply_transfers(zone, transfers)
    else:
        pytest.fail("the scheduler kept moving energy for 200 slots")
