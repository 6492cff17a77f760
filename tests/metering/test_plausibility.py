"""Plausibility checks worked out once per batch agree with their reading-by-reading rules."""

from __future__ import annotations

from datetime import timedelta
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from wattx.metering import AlertKind, Reading, ReadingAlert, RegisterSegment, ValidationPolicy
from wattx.metering.plausibility import (
    grid_quality_alerts,
    grid_quality_alerts_of,
    implied_power_check,
    implied_power_excess,
)

from .conftest import T0

policies = st.just(ValidationPolicy()) | st.builds(
    ValidationPolicy,
    capacity_margin_pct=st.integers(0, 50),
    register_resolution_wh=st.integers(0, 5),
    voltage_band_mv=st.tuples(st.integers(200_000, 230_000), st.integers(230_000, 260_000)),
    frequency_band_millihz=st.tuples(st.integers(49_000, 50_000), st.integers(50_000, 51_000)),
)
instantaneous = st.builds(
    lambda seq, voltage, frequency: Reading(
        seq=seq, ts=T0, import_wh=0, export_wh=0, voltage_mv=voltage, frequency_millihz=frequency
    ),
    st.integers(0, 1_000),
    # The default bands' edges and either side of them, or anything near the bands.
    st.none()
    | st.sampled_from([206_999, 207_000, 253_000, 253_001])
    | st.integers(190_000, 270_000),
    st.none() | st.sampled_from([49_499, 49_500, 50_500, 50_501]) | st.integers(48_500, 51_500),
)


def _alerts_by_definition(reading: Reading, policy: ValidationPolicy) -> list[ReadingAlert]:
    """The rule as the format states it: each value outside its inclusive band, voltage
    first."""
    alerts = []
    for kind, value, (low, high) in (
        (AlertKind.VOLTAGE_OUT_OF_BAND, reading.voltage_mv, policy.voltage_band_mv),
        (AlertKind.FREQUENCY_OUT_OF_BAND, reading.frequency_millihz, policy.frequency_band_millihz),
    ):
        if value is not None and not low <= value <= high:
            alerts.append(ReadingAlert(reading.seq, kind, value, low, high))
    return alerts


@settings(deadline=None, max_examples=200)
@given(batch=st.lists(instantaneous, max_size=6), policy=policies)
def test_a_batchs_alerts_are_each_readings_in_order(
    batch: list[Reading], policy: ValidationPolicy
) -> None:
    expected = [alert for reading in batch for alert in _alerts_by_definition(reading, policy)]
    assert grid_quality_alerts_of(batch, policy) == expected
    assert [a for r in batch for a in grid_quality_alerts(r, policy)] == expected


@settings(deadline=None, max_examples=300)
@given(
    policy=policies,
    rated_w=st.integers(0, 20_000),
    seconds=st.integers(1, 7_200),
    imported=st.integers(0, 50_000),
    exported=st.integers(0, 50_000),
)
def test_the_power_check_quarantines_exactly_above_rated_capacity_margin_and_rounding(
    policy: ValidationPolicy, rated_w: int, seconds: int, imported: int, exported: int
) -> None:
    segment = RegisterSegment(T0, T0 + timedelta(seconds=seconds), imported, exported)
    # In exact fractions of a Wh: the energy less one register step each, against the rated
    # power with its margin over the segment's length.
    tolerated_wh = imported + exported - 2 * policy.register_resolution_wh
    allowed_wh = Fraction(rated_w * (100 + policy.capacity_margin_pct), 100) * seconds / 3_600
    excess = implied_power_check(rated_w, policy)(segment)
    assert (excess is None) == (tolerated_wh <= allowed_wh)
    assert excess == implied_power_excess(segment, rated_w, policy)
    if excess is not None:
        assert f"{imported + exported} Wh in {seconds} s" in excess
