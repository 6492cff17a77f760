from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from wattx.domain.orders import Side
from wattx.domain.zones import DEFAULT_TARIFF
from wattx.sim.agents import TradingAgent
from wattx.sim.battery import Battery, BatterySpec
from wattx.sim.bounds import PriceBounds
from wattx.sim.seeding import random_stream
from wattx.sim.storage_policy import StoragePlan, StoreFirst, default_arbitrage, storage_value
from wattx.sim.strategies import (
    FixedMargin,
    Ramping,
    StrategyName,
    ZeroIntelligence,
    gate_progress,
    make_strategy,
)

bounds_st = st.tuples(
    st.integers(min_value=0, max_value=400_000), st.integers(min_value=0, max_value=400_000)
).map(lambda pair: PriceBounds(min(pair), max(pair)))
progress_st = st.fractions(min_value=-1, max_value=2)
reference_st = st.none() | st.integers(min_value=-100_000, max_value=900_000)


@settings(deadline=None)
@given(
    st.sampled_from(list(StrategyName)),
    st.sampled_from([Side.BUY, Side.SELL]),
    bounds_st,
    reference_st,
    progress_st,
    st.integers(min_value=0, max_value=2**32),
)
def test_every_strategy_quotes_inside_the_bounds(
    name: StrategyName,
    side: Side,
    bounds: PriceBounds,
    reference: int | None,
    progress: Fraction,
    seed: int,
) -> None:
    strategy = make_strategy(name, random_stream(seed, "agent"))
    price = strategy.limit_price(side, bounds, reference, progress)
    assert bounds.feed_in <= price <= bounds.retail


@settings(deadline=None)
@given(
    bounds_st,
    reference_st,
    st.integers(min_value=-50_000, max_value=50_000),
    st.sampled_from([Side.BUY, Side.SELL]),
)
def test_agent_intents_stay_inside_bounds_whatever_the_battery_plan(
    bounds: PriceBounds, reference: int | None, forecast: int, side: Side
) -> None:
    agent = TradingAgent("m", ZeroIntelligence(random_stream(1, "m")))
    plan = StoragePlan(bid_cap=bounds.feed_in - 1, ask_floor=bounds.retail + 1)
    intent = agent.intent(1, forecast, plan, bounds, reference, Fraction(1, 2))
    if forecast == 0:
        assert intent is None
    else:
        assert intent is not None
        assert bounds.feed_in <= intent.limit_price <= bounds.retail
        assert intent.qty_wh == abs(forecast)
        assert intent.side is (Side.SELL if forecast > 0 else Side.BUY)


def test_zero_intelligence_is_seeded_and_spreads_over_the_band() -> None:
    bounds = PriceBounds(80_000, 300_000)
    a = ZeroIntelligence(random_stream(4, "a"))
    b = ZeroIntelligence(random_stream(4, "a"))
    prices_a = [a.limit_price(Side.BUY, bounds, None, Fraction(0)) for _ in range(200)]
    prices_b = [b.limit_price(Side.BUY, bounds, None, Fraction(0)) for _ in range(200)]
    assert prices_a == prices_b
    assert min(prices_a) < 120_000
    assert max(prices_a) > 260_000


def test_fixed_margin_prices() -> None:
    bounds = PriceBounds(80_000, 300_000)
    strategy = FixedMargin(margin=50_000)
    assert strategy.limit_price(Side.SELL, bounds, None, Fraction(0)) == 130_000
    assert strategy.limit_price(Side.BUY, bounds, None, Fraction(0)) == 250_000
    assert FixedMargin(500_000).limit_price(Side.SELL, bounds, None, Fraction(0)) == 300_000


def test_ramping_moves_from_reservation_to_reference() -> None:
    bounds = PriceBounds(80_000, 300_000)
    ramp = Ramping()
    sells = [ramp.limit_price(Side.SELL, bounds, 200_000, Fraction(k, 4)) for k in range(5)]
    buys = [ramp.limit_price(Side.BUY, bounds, 200_000, Fraction(k, 4)) for k in range(5)]
    assert sells == [300_000, 275_000, 250_000, 225_000, 200_000]
    assert buys == [80_000, 110_000, 140_000, 170_000, 200_000]


def test_gate_progress() -> None:
    opens = datetime(2026, 6, 1, 10, tzinfo=UTC)
    closes = opens + timedelta(minutes=10)
    assert gate_progress(opens - timedelta(minutes=1), opens, closes) == 0
    assert gate_progress(opens + timedelta(minutes=4), opens, closes) == Fraction(2, 5)
    assert gate_progress(closes + timedelta(minutes=1), opens, closes) == 1


def test_home_battery_stores_surplus_and_covers_deficit() -> None:
    spec = BatterySpec.from_round_trip(10_000, 5_000)
    policy = StoreFirst(sell_threshold=storage_value(DEFAULT_TARIFF, spec))
    # 948,683² ppm is a round trip of 899,999 ppm: 380,000 x 0.899999, rounded down.
    assert policy.sell_threshold == 341_999
    battery = Battery(spec, soc_wh=5_000)
    assert policy.plan(800, battery, 900, 200_000) == StoragePlan(charge_wh=800)
    assert policy.plan(-600, battery, 900, 200_000) == StoragePlan(discharge_wh=600)
    surplus_larger_than_power = policy.plan(3_000, battery, 900, 200_000)
    assert surplus_larger_than_power.charge_wh == 1_250


def test_home_battery_sells_when_the_price_beats_storage() -> None:
    spec = BatterySpec.from_round_trip(10_000, 5_000)
    battery = Battery(spec, soc_wh=8_000)
    plan = StoreFirst(sell_threshold=150_000, reserve_ppm=300_000).plan(500, battery, 900, 200_000)
    assert plan.charge_wh == 0
    assert plan.discharge_wh == 1_250
    agent = TradingAgent("m", FixedMargin(), StoreFirst(150_000))
    intent = agent.intent(1, 500, plan, PriceBounds(80_000, 300_000), None, Fraction(0))
    assert intent is not None
    assert intent.side is Side.SELL
    assert intent.qty_wh == 1_750


def test_community_battery_buys_cheap_and_sells_dear() -> None:
    policy = default_arbitrage(DEFAULT_TARIFF)
    spec = BatterySpec.from_round_trip(200_000, 100_000, 880_000)
    battery = Battery(spec, soc_wh=100_000)
    cheap = policy.plan(0, battery, 900, policy.charge_below)
    dear = policy.plan(0, battery, 900, policy.discharge_above)
    assert cheap.charge_wh == 25_000
    assert cheap.bid_cap == policy.charge_below
    assert dear.discharge_wh == 25_000
    assert dear.ask_floor == policy.discharge_above
    assert policy.plan(0, battery, 900, (policy.charge_below + policy.discharge_above) // 2) == (
        StoragePlan()
    )
    agent = TradingAgent("cb", FixedMargin(0), policy)
    bounds = PriceBounds(60_000, 380_000)
    bid = agent.intent(1, 0, cheap, bounds, None, Fraction(0))
    assert bid is not None
    assert bid.side is Side.BUY
    assert bid.limit_price == policy.charge_below
