"""Mint amounts: threshold, cap, carry-over, idempotence, conservation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattx.domain.epochs import EpochSchedule
from wattx.domain.errors import ValidationError
from wattx.metering import (
    EpochEnergy,
    MintPolicy,
    MintWatermark,
    compute_mint,
    last_covered_epoch,
)

QUARTER = EpochSchedule(length_s=900)
RATED_W = 4_000  # 1000 Wh per quarter hour
POLICY = MintPolicy(threshold_wh=100)


def _mint(
    watermark: MintWatermark, energies: list[EpochEnergy], through: int, *, rated_w: int = RATED_W
) -> tuple[int, MintWatermark]:
    decision = compute_mint(
        watermark,
        energies,
        through_epoch=through,
        rated_capacity_w=rated_w,
        schedule=QUARTER,
        policy=POLICY,
    )
    return decision.mint_wh, decision.watermark


def test_net_export_above_the_threshold_is_minted() -> None:
    energies = [EpochEnergy(1, 20, 320), EpochEnergy(2, 0, 150)]
    decision = compute_mint(
        MintWatermark(0),
        energies,
        through_epoch=2,
        rated_capacity_w=RATED_W,
        schedule=QUARTER,
        policy=POLICY,
    )
    assert decision.mint_wh == 450
    assert decision.watermark == MintWatermark(2, 0)
    assert (decision.available_wh, decision.cap_wh) == (450, 2_000)


def test_below_the_threshold_nothing_is_minted_and_the_watermark_stays() -> None:
    start = MintWatermark(0, carried_wh=30)
    assert _mint(start, [EpochEnergy(1, 0, 69)], 1) == (0, start)


def test_with_nothing_pending_the_watermark_moves_past_the_final_epochs() -> None:
    # A consumer's meter: import only. Nothing is carried, so nothing waits; the newest
    # epoch with energy (3) may still grow, the ones before it may not.
    energies = [EpochEnergy(1, 200, 0), EpochEnergy(2, 50, 40), EpochEnergy(3, 10, 0)]
    assert _mint(MintWatermark(0), energies, 3) == (0, MintWatermark(2, 0))
    assert _mint(MintWatermark(2), energies, 3) == (0, MintWatermark(2, 0))
    # No energy in the period: nothing is final yet.
    assert _mint(MintWatermark(3), energies, 9) == (0, MintWatermark(3, 0))
    # With something carried (below the threshold) it stays, to be added to later.
    assert _mint(MintWatermark(0, carried_wh=30), energies, 3) == (0, MintWatermark(0, 30))


def test_energy_delivered_late_is_still_minted() -> None:
    # A prosumer's meter goes quiet after epoch 5; the runs through epoch 10 move the
    # watermark to 4 only. Back online, it delivers epochs 6-10 with their export.
    early = [EpochEnergy(epoch, 10, 0) for epoch in range(1, 6)]
    minted, watermark = _mint(MintWatermark(0), early, 10)
    assert (minted, watermark) == (0, MintWatermark(4, 0))
    late = [*early, *(EpochEnergy(epoch, 0, 200) for epoch in range(6, 11))]
    assert _mint(watermark, late, 10) == (1_000, MintWatermark(10, 0))


def test_a_mint_after_idle_epochs_is_capped_from_where_the_watermark_moved() -> None:
    # Idle through epoch 20, then 2,300 Wh in epoch 21 at 4 kW (1,000 Wh an epoch): the
    # cap spans the two epochs since the watermark (19), not twenty-one.
    energies = [EpochEnergy(epoch, 10, 0) for epoch in range(1, 21)] + [EpochEnergy(21, 0, 2_300)]
    minted, watermark = _mint(MintWatermark(0), energies, 20)
    assert (minted, watermark) == (0, MintWatermark(19, 0))
    assert _mint(watermark, energies, 21) == (2_000, MintWatermark(21, carried_wh=300))


def test_surplus_waits_until_it_reaches_the_threshold() -> None:
    energies = [EpochEnergy(1, 0, 60), EpochEnergy(2, 0, 60)]
    minted, watermark = _mint(MintWatermark(0), energies, 1)
    assert (minted, watermark) == (0, MintWatermark(0))
    assert _mint(watermark, energies, 2) == (120, MintWatermark(2, 0))


def test_an_epoch_of_net_import_adds_nothing_and_takes_nothing() -> None:
    energies = [EpochEnergy(1, 0, 300), EpochEnergy(2, 500, 0), EpochEnergy(3, 100, 150)]
    assert _mint(MintWatermark(0), energies, 3) == (350, MintWatermark(3, 0))


def test_the_cap_is_rated_capacity_times_the_time_since_the_last_mint() -> None:
    energies = [EpochEnergy(1, 0, 1_300)]
    decision = compute_mint(
        MintWatermark(0),
        energies,
        through_epoch=1,
        rated_capacity_w=RATED_W,
        schedule=QUARTER,
        policy=POLICY,
    )
    assert (decision.mint_wh, decision.cap_wh) == (1_000, 1_000)
    assert decision.watermark == MintWatermark(1, carried_wh=300)


def test_what_the_cap_holds_back_is_minted_later() -> None:
    minted, watermark = _mint(MintWatermark(0), [EpochEnergy(1, 0, 1_300)], 1)
    assert minted == 1_000
    assert _mint(watermark, [EpochEnergy(2, 0, 0)], 2) == (300, MintWatermark(2, 0))


def test_a_small_meter_is_not_starved_by_the_threshold() -> None:
    # 200 W is 50 Wh per epoch, half the threshold: it mints every other epoch.
    energies = [EpochEnergy(epoch, 0, 50) for epoch in range(1, 5)]
    watermark = MintWatermark(0)
    minted = []
    for through in range(1, 5):
        amount, watermark = _mint(watermark, energies, through, rated_w=200)
        minted.append(amount)
    assert minted == [0, 100, 0, 100]


def test_running_again_for_the_same_epoch_mints_nothing() -> None:
    energies = [EpochEnergy(1, 0, 500)]
    minted, watermark = _mint(MintWatermark(0), energies, 1)
    assert minted == 500
    assert _mint(watermark, energies, 1) == (0, watermark)
    assert _mint(watermark, energies, 0) == (0, watermark)


def test_energies_outside_the_period_are_ignored() -> None:
    energies = [EpochEnergy(0, 0, 999), EpochEnergy(3, 0, 400), EpochEnergy(9, 0, 999)]
    assert _mint(MintWatermark(2), energies, 3) == (400, MintWatermark(3, 0))


def test_an_epoch_given_twice_is_refused() -> None:
    with pytest.raises(ValidationError):
        _mint(MintWatermark(0), [EpochEnergy(1, 0, 200), EpochEnergy(1, 0, 200)], 1)


def test_policy_and_watermark_ranges() -> None:
    with pytest.raises(ValidationError):
        MintPolicy(threshold_wh=0)
    with pytest.raises(ValidationError):
        MintWatermark(0, carried_wh=-1)


def test_the_last_covered_epoch_ends_no_later_than_the_newest_reading() -> None:
    on_boundary = datetime(2025, 6, 1, 12, 15, 0, tzinfo=UTC)
    epoch = QUARTER.epoch_id_at(on_boundary)
    assert last_covered_epoch(on_boundary, QUARTER) == epoch - 1
    assert QUARTER.epoch(epoch - 1).end == on_boundary
    inside = datetime(2025, 6, 1, 12, 29, 59, tzinfo=UTC)
    assert last_covered_epoch(inside, QUARTER) == epoch - 1


@settings(deadline=None, max_examples=100)
@given(
    nets=st.lists(st.tuples(st.integers(0, 3_000), st.integers(0, 3_000)), min_size=1, max_size=40),
    run_gaps=st.lists(st.integers(1, 5), min_size=1, max_size=40),
    threshold=st.integers(1, 2_000),
    rated_w=st.integers(0, 8_000),
)
def test_minting_conserves_surplus_and_respects_threshold_and_cap(
    nets: list[tuple[int, int]], run_gaps: list[int], threshold: int, rated_w: int
) -> None:
    energies = [
        EpochEnergy(i + 1, imported, exported) for i, (imported, exported) in enumerate(nets)
    ]
    policy = MintPolicy(threshold_wh=threshold)
    watermark = MintWatermark(0)
    minted_total = 0
    through = 0
    for gap in run_gaps:
        through = min(through + gap, len(energies))
        decision = compute_mint(
            watermark,
            energies,
            through_epoch=through,
            rated_capacity_w=rated_w,
            schedule=QUARTER,
            policy=policy,
        )
        period_s = (through - watermark.last_mint_epoch) * QUARTER.length_s
        assert decision.mint_wh == 0 or threshold <= decision.mint_wh <= rated_w * period_s // 3600
        minted_total += decision.mint_wh
        watermark = decision.watermark
    surplus = sum(max(0, e.net_export_wh) for e in energies if e.epoch_id <= through)
    pending = sum(
        max(0, e.net_export_wh)
        for e in energies
        if watermark.last_mint_epoch < e.epoch_id <= through
    )
    # Everything counted is minted, carried, or still waiting in the open period.
    assert minted_total + watermark.carried_wh + pending == surplus
