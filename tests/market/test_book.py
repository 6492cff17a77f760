from __future__ import annotations

from wattx.domain import OrderStatus, Side
from wattx.market import ContinuousBook, ZoneRate
from wattx.market.book import Fill
from wattx.market.depth import book_depth

from .helpers import make_order

LOSSLESS = ZoneRate(0, 0)


def test_buy_takes_asks_by_price_then_time() -> None:
    book = ContinuousBook("a", 1)
    late_cheap = make_order("s1", Side.SELL, 100, 100_000, epoch_id=1)
    early = make_order("s2", Side.SELL, 100, 110_000, epoch_id=1)
    later = make_order("s3", Side.SELL, 100, 110_000, epoch_id=1)
    for seq, order in enumerate((early, later, late_cheap), start=1):
        order.seq = seq
        book.rest(order)
    fills: list[Fill] = []
    remaining, stopped = book.match_buy("b", 250, 120_000, LOSSLESS, fills)
    assert (remaining, stopped) == (0, False)
    assert [(f[0].owner, f[1], f[3]) for f in fills] == [
        ("s1", 100, 100_000),
        ("s2", 100, 110_000),
        ("s3", 50, 110_000),
    ]
    assert later.status is OrderStatus.PARTIALLY_FILLED
    assert later.filled_wh == 50
    depth = book_depth(book, 5)
    assert [(lv.price, lv.qty_wh, lv.orders) for lv in depth.asks] == [(110_000, 50, 1)]


def test_cancel_is_lazy_but_depth_and_matching_see_it_at_once() -> None:
    book = ContinuousBook("a", 1)
    first = make_order("s1", Side.SELL, 100, 100_000, epoch_id=1)
    second = make_order("s2", Side.SELL, 200, 100_000, epoch_id=1)
    book.rest(first)
    book.rest(second)
    assert book.cancel(first) == 100
    assert first.status is OrderStatus.CANCELLED
    assert first.cancelled_wh == 100
    assert [(lv.qty_wh, lv.orders) for lv in book_depth(book, 5).asks] == [(200, 1)]
    fills: list[Fill] = []
    book.match_buy("b", 50, 100_000, LOSSLESS, fills)
    assert [f[0] for f in fills] == [second]


def test_emptied_levels_leave_the_book() -> None:
    book = ContinuousBook("a", 1)
    order = make_order("b1", Side.BUY, 100, 100_000, epoch_id=1)
    book.rest(order)
    book.cancel(order)
    assert book.best_bid() is None
    assert book.is_empty()
    assert book_depth(book, 5).bids == []


def test_match_stops_before_the_owners_own_order() -> None:
    book = ContinuousBook("a", 1)
    other = make_order("x", Side.BUY, 100, 120_000, epoch_id=1)
    own = make_order("me", Side.BUY, 100, 110_000, epoch_id=1)
    book.rest(other)
    book.rest(own)
    fills: list[Fill] = []
    remaining, stopped = book.match_sell("me", 300, 100_000, LOSSLESS, fills)
    assert (remaining, stopped) == (200, True)
    assert own.filled_wh == 0
    assert other.status is OrderStatus.FILLED


def test_sell_trades_at_the_bid_translated_to_seller_terms() -> None:
    rate = ZoneRate(5_000, 100)
    book = ContinuousBook("a", 1)
    bid = make_order("b", Side.BUY, 990, 200_000, epoch_id=1)
    book.rest(bid)
    fills: list[Fill] = []
    remaining, _ = book.match_sell("s", 5_000, rate.buy_threshold(150_000), rate, fills)
    ((resting, sold, delivered, price),) = fills
    assert resting is bid
    assert price == 200_000 * 9_900 // 10_000 - 5_000
    assert delivered == 990
    assert sold == 999  # 999 - floor(9.99) = 990: the loss rounds down
    assert remaining == 4_001
    assert bid.status is OrderStatus.FILLED


def test_many_cancels_in_a_deep_level_are_compacted() -> None:
    book = ContinuousBook("a", 1)
    orders = [make_order(f"s{i}", Side.SELL, 10, 100_000, epoch_id=1) for i in range(200)]
    for order in orders:
        book.rest(order)
    for order in orders[:-1]:
        book.cancel(order)
    level = book.best_ask()
    assert level is not None
    assert level.count == 1
    assert len(level.orders) <= 2 * level.count + 32
    assert level.head() is orders[-1]
