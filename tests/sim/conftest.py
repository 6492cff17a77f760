"""A small community over one June day, built once per test session."""

from __future__ import annotations

from datetime import date

import pytest

from wattx.domain.epochs import EpochSchedule
from wattx.sim.community import Community, CommunityMix, draw_community
from wattx.sim.scenario import Scenario, build_scenario
from wattx.sim.timegrid import TimeGrid

SMALL_MIX = CommunityMix(
    households=6,
    consumer_ppm=250_000,
    pv_prosumer_ppm=250_000,
    pv_battery_ppm=250_000,
    ev_owner_ppm=250_000,
)


def one_june_day(step_s: int = 900) -> TimeGrid:
    return TimeGrid.for_days(date(2026, 6, 3), 1, EpochSchedule(length_s=step_s))


@pytest.fixture(scope="session")
def small_community() -> Community:
    return draw_community(SMALL_MIX, seed=7)


@pytest.fixture(scope="session")
def small_scenario(small_community: Community) -> Scenario:
    return build_scenario(small_community, one_june_day())
