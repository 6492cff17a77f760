from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattx.domain import ValidationError
from wattx.market import ZoneRate, ZoneRateTable

from .helpers import zone

A = zone("a", position_km=0, neighbours=frozenset({"b"}))
B = zone("b", position_km=2)
C = zone("c", position_km=5)
FAR = zone("far", position_km=40)


def test_default_table_follows_the_design_defaults() -> None:
    table = ZoneRateTable()
    assert table.rate(A, A) == ZoneRate(5_000, 100)
    assert table.rate(A, B) == ZoneRate(10_000, 300)
    assert table.rate(B, A) == ZoneRate(10_000, 300)  # adjacency is symmetric
    assert table.rate(A, C) == ZoneRate(15_000 + 5 * 1_000, 300 + 5 * 100)
    assert table.rate(A, FAR) == ZoneRate(15_000 + 40 * 1_000, 1_500)  # loss capped at 15 %


def test_override_replaces_one_direction_only() -> None:
    table = ZoneRateTable(overrides=(("a", "c", ZoneRate(1, 2)),))
    assert table.rate(A, C) == ZoneRate(1, 2)
    assert table.rate(C, A) == ZoneRate(20_000, 800)


def test_rate_rejects_negative_wheeling_and_total_loss() -> None:
    with pytest.raises(ValidationError):
        ZoneRate(-1, 0)
    with pytest.raises(ValidationError):
        ZoneRate(0, 10_000)


def test_losses_round_down_in_the_buyers_favour() -> None:
    rate = ZoneRate(0, 100)
    assert rate.delivered(99) == 99
    assert rate.delivered(100) == 99
    assert rate.delivered(250) == 248
    assert rate.sold_for(99) == 99
    assert rate.sold_for(248) == 250


def test_wheeling_fee_is_per_kwh_sold_rounded_down() -> None:
    assert ZoneRate(5_000, 0).wheeling_fee(1_234) == 6_170
    assert ZoneRate(3, 0).wheeling_fee(333) == 0


rates = st.builds(ZoneRate, st.integers(0, 60_000), st.integers(0, 1_500))


@settings(deadline=None, max_examples=200)
@given(rate=rates, delivered=st.integers(1, 10**9))
def test_sold_for_is_the_least_quantity_delivering_the_target(
    rate: ZoneRate, delivered: int
) -> None:
    sold = rate.sold_for(delivered)
    assert rate.delivered(sold) == delivered
    assert sold == 1 or rate.delivered(sold - 1) < delivered


@settings(deadline=None, max_examples=200)
@given(rate=rates, buy=st.integers(0, 10**6), sell=st.integers(0, 10**6))
def test_seller_cap_and_buy_threshold_describe_the_same_landed_test(
    rate: ZoneRate, buy: int, sell: int
) -> None:
    landed_ok = (sell + rate.wheeling_per_kwh) * 10_000 <= buy * (10_000 - rate.loss_bps)
    assert (sell <= rate.seller_cap(buy)) == landed_ok
    assert (buy >= rate.buy_threshold(sell)) == landed_ok


@settings(deadline=None, max_examples=200)
@given(rate=rates, buy=st.integers(0, 10**6), sold=st.integers(1, 10**7))
def test_a_trade_at_the_seller_cap_never_costs_the_buyer_more_than_its_limit(
    rate: ZoneRate, buy: int, sold: int
) -> None:
    price = rate.seller_cap(buy)
    if price < 0:
        return
    cost = sold * price // 1000 + rate.wheeling_fee(sold)
    assert 1000 * cost <= rate.delivered(sold) * buy
