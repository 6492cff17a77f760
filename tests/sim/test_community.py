from __future__ import annotations

import numpy as np

from wattx.sim.community import CommunityMix, HouseholdKind, draw_community
from wattx.sim.scenario import Scenario, build_scenario

from .conftest import one_june_day


def test_mix_counts_are_exact_and_kinds_have_their_devices() -> None:
    community = draw_community(CommunityMix(households=100), seed=1)
    kinds = [m.kind for m in community.members]
    assert kinds.count(HouseholdKind.CONSUMER) == 35
    assert kinds.count(HouseholdKind.PV_PROSUMER) == 30
    assert kinds.count(HouseholdKind.PV_BATTERY) == 20
    assert kinds.count(HouseholdKind.EV_OWNER) == 15
    assert kinds.count(HouseholdKind.SCHOOL) == kinds.count(HouseholdKind.COMMUNITY_BATTERY) == 1
    for member in community.members:
        if member.kind is HouseholdKind.CONSUMER:
            assert member.pv is None
            assert member.battery is None
            assert member.ev is None
        if member.kind is HouseholdKind.PV_BATTERY:
            assert member.pv is not None
            assert member.battery is not None
        if member.kind is HouseholdKind.EV_OWNER:
            assert member.ev is not None
        if member.kind is not HouseholdKind.COMMUNITY_BATTERY:
            assert 1_200 <= member.annual_kwh <= 150_000


def test_same_seed_same_community_other_seed_other_community() -> None:
    mix = CommunityMix(households=30)
    assert draw_community(mix, 11) == draw_community(mix, 11)
    assert draw_community(mix, 11) != draw_community(mix, 12)


def test_scenario_is_reproducible_by_seed(small_scenario: Scenario) -> None:
    again = build_scenario(small_scenario.community, one_june_day())
    for member_id, series in small_scenario.series.items():
        other = again.series[member_id]
        assert np.array_equal(series.production_wh, other.production_wh)
        assert np.array_equal(series.consumption_wh, other.consumption_wh)
        assert np.array_equal(series.consumption_forecast_wh, other.consumption_forecast_wh)
