from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from wattx.domain import OrderStatus, Side
from wattx.market import (
    AuctionClearing,
    MarketEngine,
    Mechanism,
    ZoneRateTable,
    clear_call_auction,
    clear_call_auction_arrays,
)

from .helpers import NOW, after_gate, config, engine, epoch_of, make_order

Book = list[tuple[int, int]]


def brute_force(bids: Book, asks: Book) -> tuple[int, int]:
    """Best volume and, at it, least imbalance, by trying every integer price."""
    prices = [p for p, _ in bids + asks]
    best = (0, 0)
    for price in range(min(prices), max(prices) + 1):
        demand = sum(q for p, q in bids if p >= price)
        supply = sum(q for p, q in asks if p <= price)
        key = (min(demand, supply), -abs(demand - supply))
        best = max(best, key)
    return best[0], -best[1]


def test_clears_where_supply_meets_demand() -> None:
    bids = [(120, 100), (110, 100), (100, 100)]
    asks = [(90, 100), (105, 100), (115, 100)]
    result = clear_call_auction(bids, asks)
    # Volume 200 (and imbalance 0) for any price in [105, 110]: midpoint 107, rounded down.
    assert result == AuctionClearing(price=107, volume=200, demand=200, supply=200)


def test_imbalance_breaks_ties_before_the_midpoint() -> None:
    bids = [(100, 300)]
    asks = [(80, 100), (90, 100)]
    # Volume 200 at [90, 100], demand 300 throughout: the interval stays; midpoint 95.
    assert clear_call_auction(bids, asks).price == 95
    bids = [(100, 150), (95, 50)]
    asks = [(80, 100), (90, 100)]
    # Volume 200 needs p in [90, 95]; imbalance 0 there too; midpoint 92 (rounded down).
    assert clear_call_auction(bids, asks).price == 92


def test_no_cross_has_no_price() -> None:
    assert clear_call_auction([(100, 5)], [(101, 5)]).price is None
    assert clear_call_auction([], [(101, 5)]).volume == 0
    assert clear_call_auction_arrays([100], [5], [101], [5]).price is None
    assert clear_call_auction_arrays([], [], [1], [1]).price is None


books = st.lists(st.tuples(st.integers(1, 40), st.integers(1, 30)), min_size=0, max_size=8)


@settings(deadline=None, max_examples=300)
@given(bids=books, asks=books)
def test_volume_matches_a_brute_force_reference(bids: Book, asks: Book) -> None:
    result = clear_call_auction(bids, asks)
    if not bids or not asks:
        assert result.price is None
        return
    volume, imbalance = brute_force(bids, asks)
    assert result.volume == volume
    if volume == 0:
        assert result.price is None
        return
    assert result.price is not None
    assert result.imbalance == imbalance
    # Every order that trades at the clearing price is inside its limit by construction
    # (demand counts bids >= price, supply asks <= price); the counts must add up.
    assert result.demand == sum(q for p, q in bids if p >= result.price)
    assert result.supply == sum(q for p, q in asks if p <= result.price)


@settings(deadline=None, max_examples=200)
@given(
    bids=st.lists(st.tuples(st.integers(1, 10**6), st.integers(1, 10**6)), max_size=30),
    asks=st.lists(st.tuples(st.integers(1, 10**6), st.integers(1, 10**6)), max_size=30),
)
def test_array_entry_point_agrees_with_the_object_version(bids: Book, asks: Book) -> None:
    arrays = clear_call_auction_arrays(
        np.array([p for p, _ in bids], dtype=np.int64),
        np.array([q for _, q in bids], dtype=np.int64),
        np.array([p for p, _ in asks], dtype=np.int64),
        np.array([q for _, q in asks], dtype=np.int64),
    )
    assert arrays == clear_call_auction(bids, asks)


def auction_engine(
    mechanism: Mechanism = Mechanism.CALL_AUCTION, rates: ZoneRateTable | None = None
) -> tuple[MarketEngine, int]:
    eng = engine(config(mechanisms={"a": mechanism}, rates=rates))
    return eng, epoch_of(eng)


def test_auction_orders_rest_until_gate_closure_then_trade_at_one_price() -> None:
    eng, ep = auction_engine()
    orders = [
        make_order("b1", Side.BUY, 100, 120_000, epoch_id=ep),
        make_order("b2", Side.BUY, 100, 110_000, epoch_id=ep),
        make_order("s1", Side.SELL, 100, 90_000, epoch_id=ep),
        make_order("s2", Side.SELL, 100, 105_000, epoch_id=ep),
        make_order("s3", Side.SELL, 100, 115_000, epoch_id=ep),
    ]
    for order in orders:
        assert eng.submit(order, NOW).trades == []
    assert eng.depth("a", ep).bids[0].price == 120_000
    closure = eng.close_gate(ep, after_gate(eng, ep))
    assert closure.clearing_prices == {"a": 107_500}
    assert {t.price for t in closure.trades} == {107_500}
    assert sum(t.qty_wh for t in closure.trades) == 200
    assert closure.expired == [orders[4]]
    assert orders[4].status is OrderStatus.EXPIRED
    assert all(o.status is OrderStatus.FILLED for o in orders[:4])
    assert set(closure.touched) == set(orders)


def test_time_priority_at_the_marginal_price() -> None:
    eng, ep = auction_engine()
    early = make_order("b1", Side.BUY, 100, 100_000, epoch_id=ep)
    late = make_order("b2", Side.BUY, 100, 100_000, epoch_id=ep)
    eng.submit(early, NOW)
    eng.submit(late, NOW)
    eng.submit(make_order("s", Side.SELL, 150, 100_000, epoch_id=ep), NOW)
    closure = eng.close_gate(ep, after_gate(eng, ep))
    assert closure.clearing_prices["a"] == 100_000
    assert (early.filled_wh, late.filled_wh) == (100, 50)
    assert late.status is OrderStatus.EXPIRED


def test_pay_as_bid_prices_each_match_at_the_bid() -> None:
    eng, ep = auction_engine(Mechanism.PAY_AS_BID)
    eng.submit(make_order("b1", Side.BUY, 100, 120_000, epoch_id=ep), NOW)
    eng.submit(make_order("b2", Side.BUY, 100, 110_000, epoch_id=ep), NOW)
    eng.submit(make_order("s1", Side.SELL, 100, 90_000, epoch_id=ep), NOW)
    eng.submit(make_order("s2", Side.SELL, 100, 105_000, epoch_id=ep), NOW)
    closure = eng.close_gate(ep, after_gate(eng, ep))
    assert closure.clearing_prices["a"] == 107_500
    assert [(t.buyer, t.seller, t.price) for t in closure.trades] == [
        ("b1", "s1", 120_000),
        ("b2", "s2", 110_000),
    ]


def test_auction_never_matches_an_owner_with_itself() -> None:
    eng, ep = auction_engine()
    eng.submit(make_order("me", Side.BUY, 100, 120_000, epoch_id=ep), NOW)
    eng.submit(make_order("me", Side.SELL, 100, 90_000, epoch_id=ep), NOW)
    eng.submit(make_order("x", Side.SELL, 100, 95_000, epoch_id=ep), NOW)
    closure = eng.close_gate(ep, after_gate(eng, ep))
    # The owner's newer order (its sell) gives way; the auction clears again without it.
    assert [(t.buyer, t.seller, t.price) for t in closure.trades] == [("me", "x", 107_500)]
    assert closure.clearing_prices == {"a": 107_500}


def test_auction_with_losses_converts_buy_limits_to_seller_terms() -> None:
    eng, ep = auction_engine(rates=ZoneRateTable())
    buy = make_order("b", Side.BUY, 990, 200_000, epoch_id=ep)
    eng.submit(buy, NOW)
    eng.submit(make_order("s", Side.SELL, 5_000, 150_000, epoch_id=ep), NOW)
    closure = eng.close_gate(ep, after_gate(eng, ep))
    (trade,) = closure.trades
    cap = 200_000 * 9_900 // 10_000 - 5_000
    assert trade.price == (150_000 + cap) // 2
    assert trade.delivered_wh == 990
    assert buy.status is OrderStatus.FILLED
    assert 1000 * (trade.value + trade.wheeling_fee) <= trade.delivered_wh * buy.limit_price


def test_zone_without_orders_reports_no_price() -> None:
    eng, ep = auction_engine()
    assert eng.close_gate(ep, after_gate(eng, ep)).clearing_prices == {"a": None}


def test_amend_and_restore_in_an_auction_zone() -> None:
    eng, ep = auction_engine()
    sell = make_order("s", Side.SELL, 100, 130_000, epoch_id=ep)
    eng.submit(sell, NOW)
    _, amended = eng.amend(sell.id, "s", new_order_id="s2", qty_wh=100, limit_price=90_000, now=NOW)
    assert amended.trades == []
    buy = make_order("b", Side.BUY, 100, 100_000, epoch_id=ep)
    buy.seq = 50
    eng.restore([buy])
    closure = eng.close_gate(ep, after_gate(eng, ep))
    assert [(t.sell_order_id, t.buy_order_id, t.price) for t in closure.trades] == [
        ("s2", buy.id, 95_000)
    ]
    assert sell.status is OrderStatus.CANCELLED
