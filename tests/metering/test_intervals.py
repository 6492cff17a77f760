"""Interval energy: splitting register differences over delivery epochs."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattx.domain.epochs import EpochSchedule
from wattx.domain.errors import ValidationError
from wattx.metering import EpochEnergy, Reading, RegisterSegment, epoch_energies, split_segment

QUARTER = EpochSchedule(length_s=900)
BASE = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)  # an epoch boundary
BASE_EPOCH = QUARTER.epoch_id_at(BASE)


def _at(seconds: int) -> datetime:
    return BASE + timedelta(seconds=seconds)


def test_a_segment_inside_one_epoch_stays_whole() -> None:
    segment = RegisterSegment(_at(60), _at(600), import_wh=7, export_wh=300)
    assert split_segment(segment, QUARTER) == [EpochEnergy(BASE_EPOCH, 7, 300)]


def test_a_segment_ending_on_a_boundary_does_not_touch_the_next_epoch() -> None:
    segment = RegisterSegment(_at(0), _at(900), import_wh=0, export_wh=10)
    assert split_segment(segment, QUARTER) == [EpochEnergy(BASE_EPOCH, 0, 10)]


def test_a_segment_is_split_in_proportion_to_time() -> None:
    # 450 s in the first epoch, 900 s in the second, 450 s in the third.
    segment = RegisterSegment(_at(450), _at(2_250), import_wh=100, export_wh=1_000)
    assert split_segment(segment, QUARTER) == [
        EpochEnergy(BASE_EPOCH, 25, 250),
        EpochEnergy(BASE_EPOCH + 1, 50, 500),
        EpochEnergy(BASE_EPOCH + 2, 25, 250),
    ]


def test_rounding_is_cumulative_so_nothing_is_lost() -> None:
    # 1 Wh over three equal thirds: floor(1/3)=0, floor(2/3)=0, floor(3/3)=1.
    segment = RegisterSegment(_at(0), _at(2_700), import_wh=1, export_wh=2)
    assert split_segment(segment, QUARTER) == [
        EpochEnergy(BASE_EPOCH, 0, 0),
        EpochEnergy(BASE_EPOCH + 1, 0, 1),
        EpochEnergy(BASE_EPOCH + 2, 1, 1),
    ]


def test_energies_of_several_segments_add_up_per_epoch() -> None:
    previous = Reading(1, _at(0), 0, 0)
    middle = Reading(2, _at(600), 10, 60)
    last = Reading(3, _at(1_200), 10, 120)
    segments = [RegisterSegment.between(previous, middle), RegisterSegment.between(middle, last)]
    totals = epoch_energies(segments, QUARTER)
    assert totals == [EpochEnergy(BASE_EPOCH, 10, 90), EpochEnergy(BASE_EPOCH + 1, 0, 30)]
    assert [e.net_export_wh for e in totals] == [80, 30]


def test_a_segment_must_move_forward_and_carry_no_negative_energy() -> None:
    with pytest.raises(ValidationError):
        RegisterSegment(_at(10), _at(10), 0, 0)
    with pytest.raises(ValidationError):
        RegisterSegment(_at(0), _at(10), -1, 0)


def test_segment_bounds_must_be_whole_seconds() -> None:
    segment = RegisterSegment(_at(0), _at(10) + timedelta(microseconds=1), 1, 1)
    with pytest.raises(ValidationError):
        split_segment(segment, QUARTER)


@st.composite
def _segments(draw: st.DrawFn) -> tuple[RegisterSegment, EpochSchedule]:
    schedule = EpochSchedule(length_s=draw(st.sampled_from([60, 300, 900, 3_600])))
    start_s = draw(st.integers(min_value=0, max_value=10 * 86_400))
    length_s = draw(st.integers(min_value=1, max_value=2 * 86_400))
    energy = st.integers(min_value=0, max_value=10**12)
    segment = RegisterSegment(_at(start_s), _at(start_s + length_s), draw(energy), draw(energy))
    return segment, schedule


def _overlap_s(segment: RegisterSegment, schedule: EpochSchedule, epoch_id: int) -> int:
    epoch = schedule.epoch(epoch_id)
    start, end = max(epoch.start, segment.start), min(epoch.end, segment.end)
    return max(0, int((end - start).total_seconds()))


@settings(deadline=None, max_examples=150)
@given(_segments())
def test_the_split_conserves_energy_and_follows_time(
    case: tuple[RegisterSegment, EpochSchedule],
) -> None:
    segment, schedule = case
    shares = split_segment(segment, schedule)
    ids = [s.epoch_id for s in shares]
    assert ids == list(range(schedule.epoch_id_at(segment.start), ids[0] + len(ids)))
    assert sum(s.import_wh for s in shares) == segment.import_wh
    assert sum(s.export_wh for s in shares) == segment.export_wh
    total_s = segment.duration_s
    for share in shares:
        overlap_s = _overlap_s(segment, schedule, share.epoch_id)
        assert overlap_s > 0
        assert share.import_wh >= 0
        assert share.export_wh >= 0
        # Within one Wh of the exact proportion: |share - E * overlap / T| < 1.
        assert abs(share.import_wh * total_s - segment.import_wh * overlap_s) < total_s
        assert abs(share.export_wh * total_s - segment.export_wh * overlap_s) < total_s


@settings(deadline=None, max_examples=80)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=7_200),
            st.integers(min_value=0, max_value=50_000),
            st.integers(min_value=0, max_value=50_000),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_epoch_energies_of_a_register_chain_add_up_to_the_register_difference(
    steps: list[tuple[int, int, int]],
) -> None:
    chain = [Reading(0, _at(17), 1_000, 2_000)]
    for seq, (gap_s, imported, exported) in enumerate(steps, start=1):
        last = chain[-1]
        chain.append(
            Reading(
                seq,
                last.ts + timedelta(seconds=gap_s),
                last.import_wh + imported,
                last.export_wh + exported,
            )
        )
    segments = [RegisterSegment.between(a, b) for a, b in itertools.pairwise(chain)]
    totals = epoch_energies(segments, QUARTER)
    assert [t.epoch_id for t in totals] == sorted({t.epoch_id for t in totals})
    assert sum(t.import_wh for t in totals) == chain[-1].import_wh - chain[0].import_wh
    assert sum(t.export_wh for t in totals) == chain[-1].export_wh - chain[0].export_wh
    assert sum(t.net_export_wh for t in totals) == (
        (chain[-1].export_wh - chain[0].export_wh) - (chain[-1].import_wh - chain[0].import_wh)
    )


@settings(deadline=None, max_examples=80)
@given(
    cases=st.lists(_segments(), min_size=1, max_size=12),
    chained=st.booleans(),
)
def test_epoch_energies_are_the_per_epoch_sums_of_the_splits(
    cases: list[tuple[RegisterSegment, EpochSchedule]], chained: bool
) -> None:
    # epoch_energies reuses a bound's seconds when a segment starts where the previous one
    # ended: with chained segments (shared bounds) and with unrelated ones it must agree
    # with splitting each segment alone.
    schedule = cases[0][1]
    segments = [segment for segment, _ in cases]
    if chained:
        segments = [segments[0]]
        for segment, _ in cases[1:]:
            start = segments[-1].end
            segments.append(
                RegisterSegment(
                    start,
                    start + (segment.end - segment.start),
                    segment.import_wh,
                    segment.export_wh,
                )
            )
    expected: dict[int, list[int]] = {}
    for segment in segments:
        for share in split_segment(segment, schedule):
            total = expected.setdefault(share.epoch_id, [0, 0])
            total[0] += share.import_wh
            total[1] += share.export_wh
    assert epoch_energies(segments, schedule) == [
        EpochEnergy(epoch_id, imported, exported)
        for epoch_id, (imported, exported) in sorted(expected.items())
    ]


def test_segment_bounds_must_carry_a_time_zone() -> None:
    segment = RegisterSegment(datetime(2026, 1, 1), datetime(2026, 1, 1, 0, 0, 10), 1, 1)
    with pytest.raises(ValidationError, match="timezone-aware"):
        split_segment(segment, QUARTER)
    with pytest.raises(ValidationError, match="timezone-aware"):
        epoch_energies([segment], QUARTER)
