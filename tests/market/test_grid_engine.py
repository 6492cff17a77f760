"""The engine on a grid tree: coupled gate closure and path-checked continuous matching."""

from __future__ import annotations

import pytest

from wattx.domain import ValidationError
from wattx.domain.orders import Side
from wattx.grid import Direction, GridTopologyError
from wattx.market import Mechanism

from .helpers import NOW, after_gate, config, engine, epoch_of, make_order, zone

AUCTION = Mechanism.CALL_AUCTION


def two_feeders(mechanism: Mechanism = AUCTION, cap: int = 300):  # type: ignore[no-untyped-def]
    """A transformer zone over two feeders; the sunny feeder f1 exports at most ``cap``."""
    zones = (
        zone("t"),
        zone("f1", parent="t", export_capacity_wh=cap),
        zone("f2", parent="t"),
    )
    mechanisms = dict.fromkeys(("t", "f1", "f2"), mechanism)
    eng = engine(config(*zones, mechanisms=mechanisms, fee_bps=0))
    return eng, epoch_of(eng)


def test_config_builds_and_checks_the_tree() -> None:
    eng, _ = two_feeders()
    grid = eng.config.grid
    assert grid is not None
    assert grid.root == "t"
    assert grid.link("f1").export_wh == 300
    with pytest.raises(GridTopologyError):
        config(zone("a", parent="b"), zone("b", parent="a"))
    with pytest.raises(ValidationError) as caught:
        config(zone("a"), zone("b", parent="nowhere"))
    assert caught.value.code == "unknown_grid_zone"
    assert config(zone("a"), zone("b")).grid is None


def test_gate_closure_clears_all_zones_together_and_reports_congestion() -> None:
    eng, ep = two_feeders()
    solar = make_order("solar", Side.SELL, 1_000, 100_000, zone_id="f1", epoch_id=ep)
    home = make_order("home", Side.BUY, 1_000, 300_000, zone_id="f2", epoch_id=ep)
    shop = make_order("shop", Side.BUY, 200, 120_000, zone_id="f1", epoch_id=ep)
    for order in (solar, home, shop):
        assert eng.submit(order, NOW).trades == []
    closure = eng.close_gate(ep, after_gate(eng, ep))
    assert closure.clearing_prices["f1"] == 100_000
    assert sum(t.qty_wh for t in closure.trades) == 500
    up = next(r for r in closure.congestion if r.child == "f1" and r.direction is Direction.UP)
    assert (up.flow_wh, up.capacity_wh, up.shadow_price, up.rent) == (300, 300, 200_000, 60_000)
    cross = next(t for t in closure.trades if t.buyer == "home")
    # The rent rides in the wheeling fee (lossless rates: no wheeling of its own).
    assert cross.wheeling_fee == 60_000
    assert cross.buyer_pays == cross.value + 60_000
    assert 1000 * cross.buyer_pays <= cross.delivered_wh * home.limit_price
    assert sum(t.wheeling_fee for t in closure.trades) == sum(r.rent for r in closure.congestion)


def test_continuous_trades_use_up_the_link_before_the_auction() -> None:
    zones = (zone("t"), zone("f1", parent="t", export_capacity_wh=300), zone("f2", parent="t"))
    mechanisms = {"t": Mechanism.CONTINUOUS, "f1": AUCTION, "f2": Mechanism.CONTINUOUS}
    eng = engine(config(*zones, mechanisms=mechanisms, fee_bps=0))
    ep = epoch_of(eng)
    eng.submit(make_order("s", Side.SELL, 1_000, 100_000, zone_id="f1", epoch_id=ep), NOW)
    eng.submit(make_order("b", Side.BUY, 1_000, 300_000, zone_id="f2", epoch_id=ep), NOW)
    closure = eng.close_gate(ep, after_gate(eng, ep))
    up = next(r for r in closure.congestion if r.child == "f1" and r.direction is Direction.UP)
    assert up.flow_wh == 0  # f2 is continuous: its bid does not take part in the auction
    assert closure.trades == []


def test_continuous_matching_checks_every_link_on_the_path() -> None:
    """f1 → f2 crosses four links; t2's import link is the tight one and stops the match."""
    zones = (
        zone("p"),
        zone("t1", parent="p"),
        zone("t2", parent="p", import_capacity_wh=400),
        zone("f1", parent="t1"),
        zone("f2", parent="t2"),
    )
    eng = engine(config(*zones, fee_bps=0))
    ep = epoch_of(eng)
    eng.submit(make_order("s", Side.SELL, 1_000, 100_000, zone_id="f1", epoch_id=ep), NOW)
    result = eng.submit(make_order("b", Side.BUY, 1_000, 200_000, zone_id="f2", epoch_id=ep), NOW)
    assert sum(t.qty_wh for t in result.trades) == 400
    assert result.limited_by == ("t2-p:down",)
    # Within f1 nothing is limited.
    local = eng.submit(make_order("c", Side.BUY, 100, 200_000, zone_id="f1", epoch_id=ep), NOW)
    assert sum(t.qty_wh for t in local.trades) == 100
    assert local.limited_by == ()
    # The link stays full for the epoch: a later buy in f2 only rests.
    later = eng.submit(make_order("d", Side.BUY, 50, 200_000, zone_id="f2", epoch_id=ep), NOW)
    assert later.trades == []
    assert later.limited_by == ("t2-p:down",)


def test_without_a_tree_each_auction_zone_clears_alone() -> None:
    zones = (zone("a"), zone("b"))
    eng = engine(config(*zones, mechanisms={"a": AUCTION, "b": AUCTION}))
    ep = epoch_of(eng)
    eng.submit(make_order("s", Side.SELL, 100, 100_000, zone_id="a", epoch_id=ep), NOW)
    eng.submit(make_order("b", Side.BUY, 100, 300_000, zone_id="b", epoch_id=ep), NOW)
    closure = eng.close_gate(ep, after_gate(eng, ep))
    assert closure.trades == []
    assert closure.congestion == []
