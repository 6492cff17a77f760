from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattx.domain import Side, Tariff, TimeOfUseBand, ValidationError
from wattx.market import (
    ReferencePriceInputs,
    ReferencePriceWeights,
    escrow_required,
    reference_factors,
    reference_price,
)
from wattx.market.reference_price import (
    GOVERNED_WEIGHTS,
    base_price,
    distance_factor,
    explain,
    governed_weights,
    reliability_factor,
    state_of_charge_factor,
    supply_demand_factor,
    time_of_use_factor,
)

W = ReferencePriceWeights()
FLAT = Tariff.flat(50_000, 300_000)


def test_neutral_inputs_leave_the_base_price() -> None:
    assert reference_price(ReferencePriceInputs(base_price=150_000, tariff=FLAT)) == 150_000


def test_supply_and_demand() -> None:
    assert supply_demand_factor(0, 0, W) == 1_000_000
    assert supply_demand_factor(300, 100, W) == 1_250_000  # 1 + 0.5 * (200 / 400)
    assert supply_demand_factor(100, 300, W) == 750_000
    assert supply_demand_factor(10**9, 0, W) == 1_500_000  # clamped at the maximum
    tight = ReferencePriceWeights(supply_demand=2_000_000, supply_demand_min=800_000)
    assert supply_demand_factor(0, 10**9, tight) == 800_000  # clamped at the minimum


def test_state_of_charge() -> None:
    assert state_of_charge_factor(500_000, W) == 1_000_000
    assert state_of_charge_factor(0, W) == 1_100_000  # empty storage: scarcity
    assert state_of_charge_factor(1_000_000, W) == 900_000
    assert state_of_charge_factor(5_000_000, W) == 900_000  # input clamped to 100 %


def test_distance() -> None:
    assert distance_factor(100_000, 0, 0, W) == 1_000_000  # no wheeling, no loss
    # (100_000 + 5_000) / 0.99 / 100_000 = 1.060606...
    assert distance_factor(100_000, 5_000, 100, W) == 1_060_606
    assert distance_factor(100_000, 10_000, 0, W) == 1_100_000
    assert distance_factor(100_000, 50_000, 1_500, W) == 1_200_000  # capped
    half = ReferencePriceWeights(distance=500_000)
    assert distance_factor(100_000, 10_000, 0, half) == 1_050_000
    assert distance_factor(0, 10_000, 0, W) == 1_000_000  # a zero base has no premium


def test_time_of_use() -> None:
    tariff = Tariff((TimeOfUseBand(0, 50_000, 200_000), TimeOfUseBand(12, 50_000, 400_000)))
    # Mean retail 300_000: noon is 4/3 of it, night 2/3.
    assert time_of_use_factor(13, tariff, W) == 1_166_666
    assert time_of_use_factor(3, tariff, W) == 833_333
    steep = ReferencePriceWeights(time_of_use=3_000_000)
    assert time_of_use_factor(13, tariff, steep) == 1_300_000  # clamped
    assert time_of_use_factor(3, tariff, steep) == 700_000
    assert time_of_use_factor(13, FLAT, W) == 1_000_000


def test_reliability() -> None:
    assert reliability_factor(1_000_000, W) == 1_000_000
    assert reliability_factor(500_000, W) == 900_000
    assert reliability_factor(0, ReferencePriceWeights(reliability=1_000_000)) == 800_000


def test_factors_multiply() -> None:
    inputs = ReferencePriceInputs(
        base_price=100_000, demand_wh=300, supply_wh=100, wheeling_per_kwh=5_000, tariff=FLAT
    )
    assert reference_price(inputs) == 100_000 * 1_250_000 // 1_000_000 * 1_050_000 // 1_000_000


def test_weights_reject_inverted_clamps() -> None:
    with pytest.raises(ValidationError):
        ReferencePriceWeights(soc_min=1_200_000, soc_max=1_100_000)


@settings(deadline=None, max_examples=100)
@given(
    demand=st.integers(0, 10**9),
    supply=st.integers(0, 10**9),
    soc=st.integers(-10, 2 * 10**6),
    wheeling=st.integers(0, 10**7),
    loss=st.integers(0, 9_999),
    hour=st.integers(0, 23),
    reliability=st.integers(0, 10**6),
)
def test_the_price_stays_within_the_product_of_the_clamps(
    demand: int, supply: int, soc: int, wheeling: int, loss: int, hour: int, reliability: int
) -> None:
    inputs = ReferencePriceInputs(
        1_000_000, demand, supply, soc, wheeling, loss, hour, FLAT, reliability
    )
    price = reference_price(inputs)
    explained = explain(inputs)
    assert explained.price == price
    for factor in explained.factors:
        assert factor.minimum <= factor.value <= factor.maximum
        assert factor.value == max(factor.minimum, min(factor.maximum, factor.unclamped))
    # Lowest clamps 0.5 x 0.9 x 1 x 0.7 x 0.8, highest 1.5 x 1.1 x 1.2 x 1.3 x 1 (a few
    # micro-units of rounding down per factor below).
    assert 252_000 - 5 <= price <= 2_574_000


def test_escrow_for_a_sell_is_the_energy_and_for_a_buy_the_worst_cost() -> None:
    assert escrow_required(Side.SELL, 1_234, 90_000, 25) == 1_234
    # 1_001 Wh at 150_000 per kWh: 150_150 micro-units, plus 25 bps rounded up (376).
    assert escrow_required(Side.BUY, 1_001, 150_000, 25) == 150_150 + 376
    assert escrow_required(Side.BUY, 1, 1, 0) == 1  # a fraction of a micro-unit rounds up


@given(
    base=st.integers(min_value=0, max_value=10**7),
    demand=st.integers(min_value=0, max_value=10**9),
    supply=st.integers(min_value=0, max_value=10**9),
    hour=st.integers(min_value=0, max_value=23),
)
def test_the_factor_breakdown_is_what_the_price_is_made_of(
    base: int, demand: int, supply: int, hour: int
) -> None:
    """The dashboard shows base × each factor; applied in order they give the price."""
    inputs = ReferencePriceInputs(base_price=base, demand_wh=demand, supply_wh=supply, hour=hour)
    factors = reference_factors(inputs)
    assert [name for name, _ in factors] == [
        "supply_demand",
        "state_of_charge",
        "distance",
        "time_of_use",
        "reliability",
    ]
    price = base
    for _, factor in factors:
        price = price * factor // 1_000_000
    assert price == reference_price(inputs)


def test_governance_scales_each_sensitivity_and_keeps_the_clamps() -> None:
    assert governed_weights({}) == W
    full = {name: 10_000 for _, name in GOVERNED_WEIGHTS}
    assert governed_weights(full) == W
    half = governed_weights({**full, "refprice_supply_demand_weight_bps": 5_000})
    assert half.supply_demand == W.supply_demand // 2
    assert (half.supply_demand_min, half.supply_demand_max) == (
        W.supply_demand_min,
        W.supply_demand_max,
    )
    off = governed_weights({"refprice_storage_weight_bps": 0})
    assert state_of_charge_factor(0, off) == 1_000_000  # switched off: always x1


def test_the_base_comes_from_governance_then_the_last_trade_then_the_tariff() -> None:
    assert base_price({"refprice_base_per_kwh": 120_000}, 90_000, 50_000, 300_000) == (
        120_000,
        "governance",
    )
    assert base_price({"refprice_base_per_kwh": 0}, 90_000, 50_000, 300_000) == (
        90_000,
        "last_trade",
    )
    assert base_price({}, None, 50_000, 300_000) == (175_000, "tariff_midpoint")


def test_explain_shows_inputs_unclamped_values_and_clamps() -> None:
    inputs = ReferencePriceInputs(
        base_price=100_000,
        demand_wh=10**9,
        supply_wh=0,
        storage_soc_ppm=250_000,
        tariff=FLAT,
        reliability_ppm=900_000,
        evidence={"state_of_charge": {"stored_wh": 2_500, "capacity_wh": 10_000}},
    )
    by_name = {f.name: f for f in explain(inputs).factors}
    sd = by_name["supply_demand"]
    assert (sd.unclamped, sd.value, sd.maximum, sd.clamped) == (
        1_500_000,
        1_500_000,
        1_500_000,
        False,
    )
    soc = by_name["state_of_charge"]
    assert soc.inputs == {"soc_ppm": 250_000, "stored_wh": 2_500, "capacity_wh": 10_000}
    assert soc.value == 1_050_000  # 1 + 0.2 x (0.5 - 0.25)
    assert by_name["reliability"].value == 980_000  # 1 - 0.2 x 0.1
    assert by_name["time_of_use"].inputs == {"hour": 12, "retail": 300_000, "mean_retail": 300_000}
    tight = ReferencePriceWeights(supply_demand=2_000_000)
    clamped = {f.name: f for f in explain(inputs, tight).factors}["supply_demand"]
    assert (clamped.unclamped, clamped.value, clamped.clamped) == (3_000_000, 1_500_000, True)
