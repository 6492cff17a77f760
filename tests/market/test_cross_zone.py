from __future__ import annotations

from wattx.domain import OrderKind, OrderStatus, Side
from wattx.market import MarketEngine, ZoneRate, ZoneRateTable

from .helpers import NOW, config, engine, epoch_of, make_order, zone

TABLE = ZoneRateTable(
    same_zone_wheeling=0,
    same_zone_loss_bps=0,
    overrides=(("b", "a", ZoneRate(10_000, 500)), ("a", "b", ZoneRate(10_000, 500))),
)


def two_zones() -> tuple[MarketEngine, int]:
    eng = engine(config(zone("a"), zone("b"), rates=TABLE))
    return eng, epoch_of(eng)


def test_buyer_takes_the_cheapest_landed_offer_across_zones() -> None:
    eng, ep = two_zones()
    # Landed at a from b: (100_000 + 10_000) / 0.95 = 115_789.47...; from a: 115_000.
    remote = make_order("r", Side.SELL, 1_000, 100_000, zone_id="b", epoch_id=ep)
    local = make_order("l", Side.SELL, 1_000, 115_000, zone_id="a", epoch_id=ep)
    eng.submit(remote, NOW)
    eng.submit(local, NOW)
    result = eng.submit(make_order("b", Side.BUY, 1_500, 120_000, zone_id="a", epoch_id=ep), NOW)
    assert [(t.seller, t.price) for t in result.trades] == [("l", 115_000), ("r", 100_000)]
    cross = result.trades[1]
    assert (cross.seller_zone, cross.buyer_zone, cross.zone) == ("b", "a", "a")
    assert cross.delivered_wh == 500
    assert cross.qty_wh == 526  # 526 - floor(26.3) = 500; the least Wh sold that delivers 500
    assert cross.wheeling_fee == cross.qty_wh * 10_000 // 1_000
    assert result.order.status is OrderStatus.FILLED


def test_remote_offer_out_of_landed_reach_does_not_trade() -> None:
    eng, ep = two_zones()
    eng.submit(make_order("r", Side.SELL, 1_000, 100_000, zone_id="b", epoch_id=ep), NOW)
    result = eng.submit(make_order("b", Side.BUY, 100, 115_000, zone_id="a", epoch_id=ep), NOW)
    assert result.trades == []
    assert result.order.status is OrderStatus.OPEN


def test_seller_takes_the_bid_paying_it_most_across_zones() -> None:
    eng, ep = two_zones()
    eng.submit(make_order("remote", Side.BUY, 1_000, 130_000, zone_id="b", epoch_id=ep), NOW)
    eng.submit(make_order("local", Side.BUY, 1_000, 112_000, zone_id="a", epoch_id=ep), NOW)
    result = eng.submit(make_order("s", Side.SELL, 300, 100_000, zone_id="a", epoch_id=ep), NOW)
    # The remote bid pays 130_000 * 0.95 - 10_000 = 113_500 to the seller.
    ((trade),) = result.trades
    assert (trade.buyer, trade.price) == ("remote", 113_500)
    assert trade.delivered_wh == 285


def test_cross_zone_disabled_keeps_zones_apart() -> None:
    eng = engine(config(zone("a"), zone("b"), rates=TABLE, cross_zone=False))
    ep = epoch_of(eng)
    eng.submit(make_order("r", Side.SELL, 1_000, 60_000, zone_id="b", epoch_id=ep), NOW)
    result = eng.submit(make_order("b", Side.BUY, 100, 300_000, zone_id="a", epoch_id=ep), NOW)
    assert result.trades == []


def test_link_capacity_caps_cross_zone_energy_per_epoch() -> None:
    eng = engine(
        config(zone("a", import_capacity_wh=500), zone("b", export_capacity_wh=10_000), rates=TABLE)
    )
    ep = epoch_of(eng)
    eng.submit(make_order("r", Side.SELL, 5_000, 60_000, zone_id="b", epoch_id=ep), NOW)
    first = eng.submit(make_order("b1", Side.BUY, 400, 300_000, zone_id="a", epoch_id=ep), NOW)
    second = eng.submit(make_order("b2", Side.BUY, 400, 300_000, zone_id="a", epoch_id=ep), NOW)
    assert sum(t.delivered_wh for t in first.trades + second.trades) == 500
    assert second.order.remaining_wh == 300
    fok = eng.submit(
        make_order("b3", Side.BUY, 1, 300_000, zone_id="a", epoch_id=ep, kind=OrderKind.MARKET_FOK),
        NOW,
    )
    assert fok.order.status is OrderStatus.CANCELLED


def test_fill_or_kill_across_zones_uses_both_books() -> None:
    eng, ep = two_zones()
    eng.submit(make_order("r", Side.SELL, 1_000, 100_000, zone_id="b", epoch_id=ep), NOW)
    eng.submit(make_order("l", Side.SELL, 100, 100_000, zone_id="a", epoch_id=ep), NOW)
    result = eng.submit(
        make_order(
            "b", Side.BUY, 600, 200_000, zone_id="a", epoch_id=ep, kind=OrderKind.MARKET_FOK
        ),
        NOW,
    )
    assert [t.seller for t in result.trades] == ["l", "r"]
    assert result.order.status is OrderStatus.FILLED
