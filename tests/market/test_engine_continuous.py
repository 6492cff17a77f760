from __future__ import annotations

from datetime import timedelta

import pytest

from wattx.domain import OrderKind, OrderStatus, Side, Tariff, TimeOfUseBand, ValidationError
from wattx.market import (
    DuplicateClientOrderIdError,
    DuplicateOrderError,
    GateClosedError,
    GateNotClosedError,
    InvalidOrderStateError,
    InvalidQuantityError,
    MarketEngine,
    Mechanism,
    NotOrderOwnerError,
    OrderKindNotSupportedError,
    OrderNotFoundError,
    OrderNotOpenError,
    PriceOutOfBoundsError,
    UnknownZoneError,
    ZoneRateTable,
)

from .helpers import FEED_IN, NOW, RETAIL, after_gate, config, engine, epoch_of, make_order, zone


@pytest.fixture
def eng() -> MarketEngine:
    return engine()


@pytest.fixture
def ep(eng: MarketEngine) -> int:
    return epoch_of(eng)


def test_incoming_buy_trades_at_the_resting_ask_price(eng: MarketEngine, ep: int) -> None:
    eng.submit(make_order("s", Side.SELL, 1_000, 100_000, epoch_id=ep), NOW)
    result = eng.submit(make_order("b", Side.BUY, 400, 150_000, epoch_id=ep), NOW)
    (trade,) = result.trades
    assert trade.price == 100_000
    assert (trade.qty_wh, trade.delivered_wh, trade.value) == (400, 400, 40_000)
    assert (trade.buyer, trade.seller) == ("b", "s")
    assert result.order.status is OrderStatus.FILLED
    assert [o.status for o in result.touched] == [OrderStatus.PARTIALLY_FILLED]
    assert result.touched[0].filled_wh == 400


def test_incoming_sell_trades_at_the_resting_bid_price(eng: MarketEngine, ep: int) -> None:
    eng.submit(make_order("b", Side.BUY, 500, 180_000, epoch_id=ep), NOW)
    result = eng.submit(make_order("s", Side.SELL, 800, 90_000, epoch_id=ep), NOW)
    (trade,) = result.trades
    assert trade.price == 180_000
    assert trade.qty_wh == 500
    assert result.order.status is OrderStatus.PARTIALLY_FILLED
    assert result.order.remaining_wh == 300
    assert eng.depth("a", ep).asks[0].qty_wh == 300


def test_orders_that_do_not_cross_rest_and_show_in_depth(eng: MarketEngine, ep: int) -> None:
    eng.submit(make_order("b1", Side.BUY, 100, 120_000, epoch_id=ep), NOW)
    eng.submit(make_order("b2", Side.BUY, 200, 120_000, epoch_id=ep), NOW)
    eng.submit(make_order("b3", Side.BUY, 300, 110_000, epoch_id=ep), NOW)
    eng.submit(make_order("s1", Side.SELL, 50, 130_000, epoch_id=ep), NOW)
    depth = eng.depth("a", ep)
    assert [(lv.price, lv.qty_wh, lv.orders) for lv in depth.bids] == [
        (120_000, 300, 2),
        (110_000, 300, 1),
    ]
    assert [(lv.price, lv.qty_wh, lv.orders) for lv in depth.asks] == [(130_000, 50, 1)]
    assert eng.depth("a", ep, levels=1).bids == depth.bids[:1]
    assert eng.depth("a", ep + 1).bids == []


def test_time_priority_within_a_price_level(eng: MarketEngine, ep: int) -> None:
    first = make_order("s1", Side.SELL, 100, 100_000, epoch_id=ep)
    second = make_order("s2", Side.SELL, 100, 100_000, epoch_id=ep)
    eng.submit(first, NOW)
    eng.submit(second, NOW)
    result = eng.submit(make_order("b", Side.BUY, 150, 100_000, epoch_id=ep), NOW)
    assert [t.sell_order_id for t in result.trades] == [first.id, second.id]
    assert [t.qty_wh for t in result.trades] == [100, 50]


def test_cancel_removes_the_rest_of_an_order(eng: MarketEngine, ep: int) -> None:
    order = make_order("s", Side.SELL, 1_000, 100_000, epoch_id=ep)
    eng.submit(order, NOW)
    eng.submit(make_order("b", Side.BUY, 300, 100_000, epoch_id=ep), NOW)
    cancelled = eng.cancel(order.id, "s")
    assert cancelled.status is OrderStatus.CANCELLED
    assert (cancelled.filled_wh, cancelled.cancelled_wh, cancelled.remaining_wh) == (300, 700, 0)
    assert eng.depth("a", ep).asks == []
    assert eng.submit(make_order("b", Side.BUY, 300, 100_000, epoch_id=ep), NOW).trades == []


def test_cancel_errors(eng: MarketEngine, ep: int) -> None:
    order = make_order("s", Side.SELL, 100, 100_000, epoch_id=ep)
    eng.submit(order, NOW)
    with pytest.raises(OrderNotFoundError):
        eng.cancel("nope")
    with pytest.raises(NotOrderOwnerError):
        eng.cancel(order.id, "mallory")
    assert order.is_open
    eng.cancel(order.id)
    with pytest.raises(OrderNotOpenError) as info:
        eng.cancel(order.id, "s")
    assert info.value.code == "order_not_open"
    assert info.value.http_status == 409


def test_amend_cancels_and_replaces_losing_priority(eng: MarketEngine, ep: int) -> None:
    first = make_order("s1", Side.SELL, 100, 100_000, epoch_id=ep, client_order_id="c1")
    second = make_order("s2", Side.SELL, 100, 100_000, epoch_id=ep)
    eng.submit(first, NOW)
    eng.submit(second, NOW)
    old, result = eng.amend(
        first.id, "s1", new_order_id="s1-v2", qty_wh=80, limit_price=100_000, now=NOW
    )
    assert old is first
    assert old.status is OrderStatus.CANCELLED
    new = result.order
    assert (new.id, new.qty_wh, new.client_order_id, new.side) == ("s1-v2", 80, "c1", Side.SELL)
    assert new.seq > second.seq
    trades = eng.submit(make_order("b", Side.BUY, 150, 100_000, epoch_id=ep), NOW).trades
    assert [t.sell_order_id for t in trades] == [second.id, "s1-v2"]


def test_amend_can_make_an_order_cross(eng: MarketEngine, ep: int) -> None:
    eng.submit(make_order("b", Side.BUY, 100, 100_000, epoch_id=ep), NOW)
    ask = make_order("s", Side.SELL, 100, 120_000, epoch_id=ep)
    eng.submit(ask, NOW)
    _, result = eng.amend(ask.id, "s", new_order_id="s2", qty_wh=100, limit_price=90_000, now=NOW)
    assert [t.price for t in result.trades] == [100_000]


def test_a_failing_amend_changes_nothing(eng: MarketEngine, ep: int) -> None:
    order = make_order("s", Side.SELL, 100, 100_000, epoch_id=ep)
    eng.submit(order, NOW)
    with pytest.raises(PriceOutOfBoundsError):
        eng.amend(order.id, "s", new_order_id="x", qty_wh=100, limit_price=RETAIL + 1, now=NOW)
    with pytest.raises(DuplicateOrderError):
        eng.amend(order.id, "s", new_order_id=order.id, qty_wh=100, limit_price=100_000, now=NOW)
    with pytest.raises(NotOrderOwnerError):
        eng.amend(order.id, "x", new_order_id="y", qty_wh=100, limit_price=100_000, now=NOW)
    assert order.status is OrderStatus.OPEN
    assert eng.open_orders() == [order]


def test_fill_or_kill_fills_completely_or_not_at_all(eng: MarketEngine, ep: int) -> None:
    eng.submit(make_order("s1", Side.SELL, 100, 100_000, epoch_id=ep), NOW)
    eng.submit(make_order("s2", Side.SELL, 100, 110_000, epoch_id=ep), NOW)
    killed = eng.submit(
        make_order("b", Side.BUY, 201, 110_000, epoch_id=ep, kind=OrderKind.MARKET_FOK), NOW
    )
    assert killed.trades == []
    assert killed.order.status is OrderStatus.CANCELLED
    assert killed.order.cancelled_wh == 201
    assert sum(lv.qty_wh for lv in eng.depth("a", ep).asks) == 200
    filled = eng.submit(
        make_order("b", Side.BUY, 200, 110_000, epoch_id=ep, kind=OrderKind.MARKET_FOK), NOW
    )
    assert [t.qty_wh for t in filled.trades] == [100, 100]
    assert filled.order.status is OrderStatus.FILLED


def test_fill_or_kill_respects_its_protection_limit(eng: MarketEngine, ep: int) -> None:
    eng.submit(make_order("s1", Side.SELL, 100, 100_000, epoch_id=ep), NOW)
    eng.submit(make_order("s2", Side.SELL, 100, 110_000, epoch_id=ep), NOW)
    result = eng.submit(
        make_order("b", Side.BUY, 150, 105_000, epoch_id=ep, kind=OrderKind.MARKET_FOK), NOW
    )
    assert result.trades == []


def test_fill_or_kill_counts_self_trade_prevention(eng: MarketEngine, ep: int) -> None:
    eng.submit(make_order("me", Side.BUY, 100, 120_000, epoch_id=ep), NOW)
    eng.submit(make_order("x", Side.BUY, 100, 110_000, epoch_id=ep), NOW)
    result = eng.submit(
        make_order("me", Side.SELL, 150, 100_000, epoch_id=ep, kind=OrderKind.MARKET_FOK), NOW
    )
    assert result.trades == []
    assert result.order.status is OrderStatus.CANCELLED


def test_immediate_or_cancel_fills_what_it_can(eng: MarketEngine, ep: int) -> None:
    eng.submit(make_order("s", Side.SELL, 100, 100_000, epoch_id=ep), NOW)
    result = eng.submit(
        make_order("b", Side.BUY, 250, 120_000, epoch_id=ep, kind=OrderKind.MARKET_IOC), NOW
    )
    assert [t.qty_wh for t in result.trades] == [100]
    assert result.order.status is OrderStatus.CANCELLED
    assert (result.order.filled_wh, result.order.cancelled_wh) == (100, 150)
    assert eng.depth("a", ep).bids == []


def test_self_trade_prevention_cancels_the_newest(eng: MarketEngine, ep: int) -> None:
    other = make_order("x", Side.SELL, 100, 100_000, epoch_id=ep)
    own = make_order("me", Side.SELL, 100, 105_000, epoch_id=ep)
    behind = make_order("y", Side.SELL, 100, 106_000, epoch_id=ep)
    for order in (other, own, behind):
        eng.submit(order, NOW)
    result = eng.submit(make_order("me", Side.BUY, 300, 120_000, epoch_id=ep), NOW)
    assert [t.seller for t in result.trades] == ["x"]
    assert result.order.status is OrderStatus.CANCELLED
    assert (result.order.filled_wh, result.order.cancelled_wh) == (100, 200)
    assert own.status is OrderStatus.OPEN
    assert behind.status is OrderStatus.OPEN


@pytest.mark.parametrize(
    ("side", "price"),
    [
        (Side.BUY, RETAIL + 1),
        (Side.SELL, FEED_IN - 1),
        (Side.BUY, FEED_IN - 1),
        (Side.SELL, RETAIL + 1),
    ],
)
def test_prices_outside_the_tariffs_are_rejected(
    eng: MarketEngine, ep: int, side: Side, price: int
) -> None:
    with pytest.raises(PriceOutOfBoundsError) as info:
        eng.submit(make_order("u", side, 100, price, epoch_id=ep), NOW)
    assert info.value.code == "price_out_of_bounds"
    assert info.value.context["feed_in"] == FEED_IN
    assert eng.open_orders() == []


def test_bounds_follow_the_time_of_use_band_of_the_epoch() -> None:
    tariff = Tariff((TimeOfUseBand(0, 50_000, 200_000), TimeOfUseBand(12, 90_000, 350_000)))
    eng = engine(config(zone("a").__class__("a", "A", tariff=tariff)))
    schedule = eng.config.schedule
    morning = schedule.epoch_id_at(NOW.replace(hour=11))  # 11:00 UTC
    noon = schedule.epoch_id_at(NOW.replace(hour=12))
    early = NOW.replace(hour=6)
    eng.submit(make_order("b", Side.BUY, 100, 200_000, epoch_id=morning), early)
    with pytest.raises(PriceOutOfBoundsError):
        eng.submit(make_order("b", Side.BUY, 100, 200_001, epoch_id=morning), early)
    eng.submit(make_order("b", Side.BUY, 100, 350_000, epoch_id=noon), early)
    with pytest.raises(PriceOutOfBoundsError):
        eng.submit(make_order("s", Side.SELL, 100, 89_999, epoch_id=noon), early)


def test_validation_errors_each_have_their_code(eng: MarketEngine, ep: int) -> None:
    with pytest.raises(UnknownZoneError):
        eng.submit(make_order("u", Side.BUY, 100, 100_000, zone_id="zz", epoch_id=ep), NOW)
    with pytest.raises(InvalidQuantityError):
        eng.submit(make_order("u", Side.BUY, 0, 100_000, epoch_id=ep), NOW)
    filled = make_order("u", Side.BUY, 100, 100_000, epoch_id=ep)
    filled.filled_wh = 1
    with pytest.raises(InvalidOrderStateError):
        eng.submit(filled, NOW)
    gate = eng.config.schedule.epoch(ep).gate_closure
    with pytest.raises(GateClosedError) as info:
        eng.submit(make_order("u", Side.BUY, 100, 100_000, epoch_id=ep), gate)
    assert info.value.code == "gate_closed"
    eng.submit(make_order("u", Side.BUY, 100, 100_000, epoch_id=ep), gate - timedelta(seconds=1))


def test_duplicate_ids_are_rejected(eng: MarketEngine, ep: int) -> None:
    eng.submit(
        make_order("u", Side.BUY, 100, 100_000, epoch_id=ep, order_id="x", client_order_id="c"), NOW
    )
    with pytest.raises(DuplicateOrderError):
        eng.submit(make_order("v", Side.BUY, 100, 100_000, epoch_id=ep, order_id="x"), NOW)
    with pytest.raises(DuplicateClientOrderIdError) as info:
        eng.submit(make_order("u", Side.BUY, 100, 100_000, epoch_id=ep, client_order_id="c"), NOW)
    assert info.value.context["order_id"] == "x"
    eng.submit(make_order("v", Side.BUY, 100, 100_000, epoch_id=ep, client_order_id="c"), NOW)


def test_market_orders_need_a_continuous_zone() -> None:
    eng = engine(config(mechanisms={"a": Mechanism.CALL_AUCTION}))
    ep = epoch_of(eng)
    with pytest.raises(OrderKindNotSupportedError):
        eng.submit(
            make_order("u", Side.BUY, 100, 100_000, epoch_id=ep, kind=OrderKind.MARKET_IOC), NOW
        )


def test_gate_closure_expires_every_open_order(eng: MarketEngine, ep: int) -> None:
    resting = make_order("s", Side.SELL, 500, 100_000, epoch_id=ep)
    eng.submit(resting, NOW)
    eng.submit(make_order("b", Side.BUY, 200, 100_000, epoch_id=ep), NOW)
    later_epoch = make_order("s", Side.SELL, 500, 100_000, epoch_id=ep + 1)
    eng.submit(later_epoch, NOW)
    with pytest.raises(GateNotClosedError):
        eng.close_gate(ep, NOW)
    closure = eng.close_gate(ep, after_gate(eng, ep))
    assert closure.expired == [resting]
    assert closure.touched == [resting]
    assert closure.trades == []
    assert closure.clearing_prices == {}
    assert resting.status is OrderStatus.EXPIRED
    assert (resting.filled_wh, resting.cancelled_wh) == (200, 300)
    assert eng.open_orders() == [later_epoch]
    with pytest.raises(GateClosedError):
        eng.submit(make_order("s", Side.SELL, 5, 100_000, epoch_id=ep), NOW)
    assert eng.close_gate(ep, after_gate(eng, ep)).expired == []
    with pytest.raises(OrderNotFoundError):
        eng.get_order(resting.id)  # a closed epoch's orders are final and forgotten


def test_times_must_be_timezone_aware(eng: MarketEngine, ep: int) -> None:
    with pytest.raises(ValidationError):
        eng.submit(make_order("u", Side.BUY, 100, 100_000, epoch_id=ep), NOW.replace(tzinfo=None))
    with pytest.raises(ValidationError):
        eng.close_gate(ep, NOW.replace(tzinfo=None))


def test_open_orders_filters(eng: MarketEngine, ep: int) -> None:
    a = make_order("u", Side.BUY, 100, 100_000, epoch_id=ep)
    b = make_order("v", Side.BUY, 100, 100_000, epoch_id=ep + 1)
    eng.submit(a, NOW)
    eng.submit(b, NOW)
    assert eng.open_orders() == [a, b]
    assert eng.open_orders(owner="v") == [b]
    assert eng.open_orders(epoch_id=ep) == [a]
    assert eng.open_orders(zone="a", epoch_id=ep + 1, owner="u") == []
    assert eng.get_order(a.id) is a


def test_epochs_with_open_orders_follow_fills_and_cancels(eng: MarketEngine, ep: int) -> None:
    assert eng.epochs_with_open_orders() == set()
    rest = make_order("u", Side.BUY, 100, 100_000, epoch_id=ep)
    later = make_order("v", Side.SELL, 100, 120_000, epoch_id=ep + 1)
    eng.submit(rest, NOW)
    eng.submit(later, NOW)
    assert eng.epochs_with_open_orders() == {ep, ep + 1}
    eng.cancel(rest.id)
    eng.submit(make_order("w", Side.BUY, 100, 120_000, epoch_id=ep + 1), NOW)
    assert eng.epochs_with_open_orders() == set()


def test_restore_rebuilds_books_and_continues_numbering(eng: MarketEngine, ep: int) -> None:
    first = make_order("s1", Side.SELL, 100, 100_000, epoch_id=ep, client_order_id="c")
    second = make_order("s2", Side.SELL, 100, 100_000, epoch_id=ep)
    first.seq, second.seq = 7, 3
    first.filled_wh, first.status = 40, OrderStatus.PARTIALLY_FILLED
    eng.restore([first, second], last_trade_seq=41)
    result = eng.submit(make_order("b", Side.BUY, 200, 100_000, epoch_id=ep), NOW)
    assert result.order.seq == 8
    assert [(t.sell_order_id, t.qty_wh, t.seq) for t in result.trades] == [
        (second.id, 100, 42),
        (first.id, 60, 43),
    ]
    with pytest.raises(DuplicateClientOrderIdError):
        eng.submit(make_order("s1", Side.SELL, 1, 100_000, epoch_id=ep, client_order_id="c"), NOW)
    with pytest.raises(DuplicateOrderError):
        eng.restore([result.order])
    done = make_order("s3", Side.SELL, 100, 100_000, epoch_id=ep)
    done.filled_wh, done.status = 100, OrderStatus.FILLED
    with pytest.raises(InvalidOrderStateError):
        eng.restore([done])


def test_fees_and_wheeling_on_a_trade() -> None:
    eng = engine(config(rates=ZoneRateTable(), fee_bps=25))
    ep = epoch_of(eng)
    eng.submit(make_order("s", Side.SELL, 10_000, 100_000, epoch_id=ep), NOW)
    (trade,) = eng.submit(make_order("b", Side.BUY, 990, 200_000, epoch_id=ep), NOW).trades
    # 999 Wh sold lose floor(9.99) = 9 Wh on the way: 990 delivered.
    assert (trade.qty_wh, trade.delivered_wh) == (999, 990)
    assert trade.value == 99_900
    assert trade.wheeling_fee == 4_995
    assert trade.buyer_fee == trade.seller_fee == 249
    assert trade.buyer_pays == 105_144
    assert trade.seller_receives == 99_651


def test_filled_cancelled_and_expired_are_the_final_statuses() -> None:
    final = {status for status in OrderStatus if status.is_final}
    assert final == {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED}
