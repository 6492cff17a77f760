"""Governed price-bound margins: they only narrow the tariffs' range, never empty it, and
the engine applies them from the epoch a change starts at."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wattx.domain import Side, ValidationError
from wattx.market import BoundMargins, MarketEngine, PriceOutOfBoundsError

from .helpers import FEED_IN, NOW, RETAIL, config, epoch_of, make_order

margin = st.integers(0, 5_000)
tariff = st.integers(0, 10**9)


@given(feed_in=tariff, extra=tariff, floor=margin, ceiling=margin)
def test_bounds_stay_inside_the_tariffs_and_never_cross(
    feed_in: int, extra: int, floor: int, ceiling: int
) -> None:
    retail = feed_in + extra
    low, high = BoundMargins(floor, ceiling).bounds(feed_in, retail)
    assert feed_in <= low <= high <= retail
    # A wider margin never widens the range.
    wider_low, wider_high = BoundMargins(min(floor + 1, 5_000), ceiling).bounds(feed_in, retail)
    assert wider_low >= low
    assert wider_high == high


def test_the_widest_margins_leave_a_price_on_an_odd_spread() -> None:
    # ⌈1 × 5,000 ÷ 10,000⌉ up from feed-in and ⌊…⌋ down from retail: the range is 101..101.
    assert BoundMargins(5_000, 5_000).bounds(100, 101) == (101, 101)


def test_no_margin_is_the_tariffs_and_out_of_range_margins_are_refused() -> None:
    assert BoundMargins().bounds(FEED_IN, RETAIL) == (FEED_IN, RETAIL)
    # 350,000 spread: 10 % up from feed-in, 20 % down from retail.
    assert BoundMargins(1_000, 2_000).bounds(FEED_IN, RETAIL) == (85_000, 330_000)
    for bad in (-1, 5_001):
        with pytest.raises(ValidationError):
            BoundMargins(bad, 0)
        with pytest.raises(ValidationError):
            BoundMargins(0, bad)


def test_the_engine_applies_margins_from_the_epoch_they_start_at() -> None:
    base = config()
    first = base.schedule.first_open_epoch(NOW)
    eng = MarketEngine(
        dataclasses.replace(base, margin_changes={first + 1: BoundMargins(1_000, 2_000)})
    )
    assert epoch_of(eng) == first
    eng.submit(make_order("s", Side.SELL, 100, FEED_IN, epoch_id=first), NOW)
    with pytest.raises(PriceOutOfBoundsError):
        eng.submit(make_order("s", Side.SELL, 100, 84_999, epoch_id=first + 1), NOW)
    with pytest.raises(PriceOutOfBoundsError):
        eng.submit(make_order("b", Side.BUY, 100, 330_001, epoch_id=first + 2), NOW)
    eng.submit(make_order("s", Side.SELL, 100, 85_000, epoch_id=first + 1), NOW)
    eng.submit(make_order("b", Side.BUY, 100, 330_000, epoch_id=first + 2), NOW)
