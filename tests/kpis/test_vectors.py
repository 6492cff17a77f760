"""The KPI core and the simulator agree on the shared vectors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from kpis.vectors import VECTORS, purchases, sales
from wattx.domain.kpis import household_kpis, savings_vs_grid, share_not_exchanged
from wattx.sim.bounds import PriceBounds
from wattx.sim.kpis import local_market_savings
from wattx.sim.results import MemberEpochRecord, RunResults
from wattx.sim.timegrid import TimeGrid

NAMES = [v["name"] for v in VECTORS]


@pytest.mark.parametrize("vector", VECTORS, ids=NAMES)
def test_core_matches_vector(vector: dict[str, Any]) -> None:
    got = household_kpis(
        consumption_wh=vector["consumption_wh"],
        production_wh=vector["production_wh"],
        purchases=purchases(vector),
        sales=sales(vector),
    )
    expect = vector["expect"]
    assert got.self_sufficiency_ppm == expect["self_sufficiency_ppm"]
    assert got.self_consumption_ppm == expect["self_consumption_ppm"]
    assert got.savings == expect["savings"]
    assert savings_vs_grid(purchases(vector), sales(vector)) == expect["savings"]


def _record(epoch_id: int, bought: tuple[int, int], sold: tuple[int, int]) -> MemberEpochRecord:
    return MemberEpochRecord(
        member_id="h1",
        epoch_id=epoch_id,
        production_wh=0,
        consumption_wh=0,
        battery_change_wh=0,
        losses_wh=0,
        local_bought_wh=bought[0],
        local_sold_wh=sold[0],
        local_paid=bought[1],
        local_earned=sold[1],
        grid_import_wh=0,
        grid_export_wh=0,
        grid_paid=0,
        grid_earned=0,
    )


@pytest.mark.parametrize("vector", VECTORS, ids=NAMES)
def test_simulator_savings_match_vector(vector: dict[str, Any]) -> None:
    """One simulated epoch per traded interval, each with the vector's tariff."""
    grid = TimeGrid(datetime(2026, 6, 1, tzinfo=UTC), steps=8)
    records: list[MemberEpochRecord] = []
    bounds = [PriceBounds(0, 0) for _ in range(grid.steps)]
    for i, (wh, paid, retail) in enumerate(vector["purchases"]):
        bounds[i] = PriceBounds(0, retail)
        records.append(_record(grid.epoch_id(i), (wh, paid), (0, 0)))
    for j, (wh, earned, feed_in) in enumerate(vector["sales"], start=4):
        bounds[j] = PriceBounds(feed_in, max(feed_in, 1))
        records.append(_record(grid.epoch_id(j), (0, 0), (wh, earned)))
    results = RunResults(mechanism="pay_as_clear", grid=grid, member_kinds={}, bounds=bounds)
    assert local_market_savings(results, records) == vector["expect"]["savings"]


def test_ratio_of_nothing_is_none_and_never_negative() -> None:
    assert share_not_exchanged(5, 0) is None
    assert share_not_exchanged(-5, 10) == 1_000_000
    assert share_not_exchanged(50, 10) == 0
