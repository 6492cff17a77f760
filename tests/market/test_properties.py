"""Invariants that hold for any sequence of submissions, cancels and amends."""

from __future__ import annotations

from dataclasses import astuple, dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattx.domain import DomainError, Order, OrderKind, OrderStatus, Side, Trade
from wattx.market import (
    MarketEngine,
    Mechanism,
    ZoneRate,
    ZoneRateTable,
    escrow_required,
)

from .helpers import FEED_IN, NOW, after_gate, config, engine, epoch_of, make_order, zone
from .test_auction import brute_force

OWNERS = ["ann", "bob", "cat", "dan"]
TICK = 10_000

submit_op = st.tuples(
    st.just("submit"),
    st.sampled_from(OWNERS),
    st.sampled_from([Side.BUY, Side.SELL]),
    st.integers(1, 3_000),
    st.integers(0, 12),
    st.sampled_from([OrderKind.LIMIT] * 4 + [OrderKind.MARKET_IOC, OrderKind.MARKET_FOK]),
    st.sampled_from(["a", "b"]),
)
cancel_op = st.tuples(st.just("cancel"), st.integers(0, 10**6))
amend_op = st.tuples(
    st.just("amend"), st.integers(0, 10**6), st.integers(1, 3_000), st.integers(0, 30)
)
operations = st.lists(
    st.one_of(submit_op, submit_op, cancel_op, amend_op), min_size=12, max_size=60
)


@dataclass
class Run:
    engine: MarketEngine
    epoch: int
    orders: list[Order] = field(default_factory=list)
    trades: list[Trade] = field(default_factory=list)
    amended: int = 0


def rate_of(run: Run, trade: Trade) -> ZoneRate:
    zones = run.engine.config.zones
    return run.engine.config.rates.rate(zones[trade.seller_zone], zones[trade.buyer_zone])


def apply(run: Run, op: tuple[Any, ...], zones: list[str]) -> None:
    eng = run.engine
    if op[0] == "submit":
        _, owner, side, qty, tick, kind, zone_id = op
        order = make_order(
            owner,
            side,
            qty,
            FEED_IN + tick * TICK,
            zone_id=zone_id if zone_id in zones else zones[0],
            epoch_id=run.epoch,
            kind=kind,
        )
        result = eng.submit(order, NOW)
        run.orders.append(order)
        run.trades.extend(result.trades)
        check_priority(run, order, result.trades)
    elif op[0] == "cancel" and run.orders:
        target = run.orders[op[1] % len(run.orders)]
        if target.is_open:
            eng.cancel(target.id, target.owner)
    elif op[0] == "amend" and run.orders:
        target = run.orders[op[1] % len(run.orders)]
        if target.is_open:
            run.amended += 1
            _, result = eng.amend(
                target.id,
                target.owner,
                new_order_id=f"{target.id}-a{run.amended}",
                qty_wh=op[2],
                limit_price=FEED_IN + op[3] * TICK,
                now=NOW,
            )
            run.orders.append(result.order)
            run.trades.extend(result.trades)
            check_priority(run, result.order, result.trades)


def check_priority(run: Run, incoming: Order, trades: list[Trade]) -> None:
    """Every resting order still open on the other side ranks behind every one that traded."""
    if len(run.engine.config.zones) > 1 or not trades:
        return
    sign = 1 if incoming.side is Side.BUY else -1

    def key(order: Order) -> tuple[int, int]:
        return sign * order.limit_price, order.seq

    by_id = {o.id: o for o in run.orders}
    traded_ids = list(
        dict.fromkeys(
            t.sell_order_id if incoming.side is Side.BUY else t.buy_order_id for t in trades
        )
    )
    traded = [by_id[order_id] for order_id in traded_ids]
    keys = [key(o) for o in traded]
    assert keys == sorted(keys)
    worst = max(keys)
    for order in run.orders:
        if order.is_open and order.side is not incoming.side and order.id not in traded_ids:
            assert key(order) > worst


def check_invariants(run: Run) -> None:
    eng = run.engine
    fee_bps = eng.config.fee_bps
    sold: dict[str, int] = {}
    bought: dict[str, int] = {}
    paid: dict[str, int] = {}
    by_id = {o.id: o for o in run.orders}
    for trade in run.trades:
        buy, sell = by_id[trade.buy_order_id], by_id[trade.sell_order_id]
        rate = rate_of(run, trade)
        assert trade.buyer != trade.seller
        assert trade.qty_wh > 0
        assert trade.delivered_wh == rate.delivered(trade.qty_wh)
        assert trade.price >= sell.limit_price
        assert (trade.price + rate.wheeling_per_kwh) * 10_000 <= buy.limit_price * (
            10_000 - rate.loss_bps
        )
        assert 1000 * (trade.value + trade.wheeling_fee) <= trade.delivered_wh * buy.limit_price
        sold[sell.id] = sold.get(sell.id, 0) + trade.qty_wh
        bought[buy.id] = bought.get(buy.id, 0) + trade.delivered_wh
        paid[buy.id] = paid.get(buy.id, 0) + trade.buyer_pays
    for order in run.orders:
        assert order.filled_wh >= 0
        assert order.cancelled_wh >= 0
        assert order.remaining_wh >= 0
        assert order.filled_wh == (sold if order.side is Side.SELL else bought).get(order.id, 0)
        assert order.is_open == (order.remaining_wh > 0)
        if order.side is Side.BUY:
            assert paid.get(order.id, 0) <= escrow_required(
                Side.BUY, order.qty_wh, order.limit_price, fee_bps
            )
    open_ids = {o.id for o in eng.open_orders()}
    assert open_ids == {o.id for o in run.orders if o.is_open}
    # Submitted = filled + cancelled + open, where "open" is what the books hold.
    for zone_id in eng.config.zones:
        depth = eng.depth(zone_id, run.epoch, levels=10_000)
        for side, levels in ((Side.BUY, depth.bids), (Side.SELL, depth.asks)):
            resting = [o for o in run.orders if o.is_open and o.side is side and o.zone == zone_id]
            assert sum(lv.qty_wh for lv in levels) == sum(o.remaining_wh for o in resting)
            assert sum(lv.orders for lv in levels) == len(resting)


def check_not_crossed(run: Run) -> None:
    """In one zone the book never stays crossed: the best bid's reach is below the best ask."""
    eng = run.engine
    if len(eng.config.zones) > 1:
        return
    rate = eng.config.rates.rate(eng.config.zones["a"], eng.config.zones["a"])
    resting = eng.open_orders()
    bids = [o.limit_price for o in resting if o.side is Side.BUY]
    asks = [o.limit_price for o in resting if o.side is Side.SELL]
    if bids and asks:
        assert rate.seller_cap(max(bids)) < min(asks)


def run_sequence(eng: MarketEngine, ops: list[tuple[Any, ...]]) -> Run:
    run = Run(eng, epoch_of(eng))
    zones = sorted(eng.config.zones)
    for op in ops:
        apply(run, op, zones)
        check_invariants(run)
        check_not_crossed(run)
    closure = eng.close_gate(run.epoch, after_gate(eng, run.epoch))
    assert all(not o.is_open for o in run.orders)
    assert {o.id for o in closure.expired} <= {o.id for o in run.orders}
    assert all(o.status is OrderStatus.EXPIRED for o in closure.expired)
    check_invariants(run)
    return run


@settings(deadline=None, max_examples=60)
@given(ops=operations)
def test_one_zone_with_losses_and_fees(ops: list[tuple[Any, ...]]) -> None:
    run_sequence(engine(config(rates=ZoneRateTable())), ops)


@settings(deadline=None, max_examples=100)
@given(ops=operations)
def test_one_lossless_zone(ops: list[tuple[Any, ...]]) -> None:
    run_sequence(engine(config(rates=ZoneRateTable.lossless(), fee_bps=0)), ops)


@settings(deadline=None, max_examples=50)
@given(ops=operations, import_cap=st.none() | st.integers(0, 5_000))
def test_two_zones_across_links(ops: list[tuple[Any, ...]], import_cap: int | None) -> None:
    cfg = config(
        zone("a", position_km=0, import_capacity_wh=import_cap),
        zone("b", position_km=3, export_capacity_wh=4_000),
        rates=ZoneRateTable(),
    )
    run = run_sequence(engine(cfg), ops)
    into_a = sum(t.delivered_wh for t in run.trades if t.buyer_zone == "a" and t.seller_zone == "b")
    out_of_b = sum(t.qty_wh for t in run.trades if t.seller_zone == "b" and t.buyer_zone != "b")
    assert import_cap is None or into_a <= import_cap
    assert out_of_b <= 4_000


auction_orders = st.lists(
    st.tuples(st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 500), st.integers(0, 20)),
    max_size=16,
)


@settings(deadline=None, max_examples=150)
@given(orders=auction_orders, pay_as_bid=st.booleans())
def test_call_auction_volume_matches_brute_force(
    orders: list[tuple[Side, int, int]], pay_as_bid: bool
) -> None:
    mechanism = Mechanism.PAY_AS_BID if pay_as_bid else Mechanism.CALL_AUCTION
    eng = engine(config(mechanisms={"a": mechanism}, rates=ZoneRateTable.lossless()))
    ep = epoch_of(eng)
    run = Run(eng, ep)
    for i, (side, qty, tick) in enumerate(orders):
        order = make_order(f"u{i}", side, qty, FEED_IN + tick * TICK, epoch_id=ep)
        eng.submit(order, NOW)
        run.orders.append(order)
    closure = eng.close_gate(ep, after_gate(eng, ep))
    run.trades = closure.trades
    check_invariants(run)
    # The reference tries every integer price. It is given each order's tick doubled (tick k
    # at 2k) rather than its price (FEED_IN + k × TICK): both keep the orders' order and an
    # integer between any two distinct prices, so it meets the same demand and supply pairs,
    # in at most 41 prices instead of 200,001.
    bids = [(2 * tick, qty) for side, qty, tick in orders if side is Side.BUY]
    asks = [(2 * tick, qty) for side, qty, tick in orders if side is Side.SELL]
    expected = brute_force(bids, asks)[0] if bids and asks else 0
    assert sum(t.qty_wh for t in closure.trades) == expected
    price = closure.clearing_prices["a"]
    assert (price is None) == (expected == 0)
    by_id = {o.id: o for o in run.orders}
    for trade in closure.trades:
        assert by_id[trade.sell_order_id].limit_price <= trade.price
        assert trade.price <= by_id[trade.buy_order_id].limit_price
        if not pay_as_bid:
            assert trade.price == price


@settings(deadline=None, max_examples=100)
@given(
    orders=st.lists(
        st.tuples(
            st.sampled_from(OWNERS),
            st.sampled_from([Side.BUY, Side.SELL]),
            st.integers(1, 500),
            st.integers(0, 20),
        ),
        max_size=16,
    ),
    mechanism=st.sampled_from([Mechanism.CALL_AUCTION, Mechanism.PAY_AS_BID]),
)
def test_call_auction_with_shared_owners_and_losses_keeps_every_rule(
    orders: list[tuple[str, Side, int, int]], mechanism: Mechanism
) -> None:
    eng = engine(config(mechanisms={"a": mechanism}, rates=ZoneRateTable()))
    ep = epoch_of(eng)
    run = Run(eng, ep)
    for owner, side, qty, tick in orders:
        order = make_order(owner, side, qty, FEED_IN + tick * TICK, epoch_id=ep)
        eng.submit(order, NOW)
        run.orders.append(order)
    run.trades = eng.close_gate(ep, after_gate(eng, ep)).trades
    check_invariants(run)


@settings(deadline=None, max_examples=60)
@given(submits=st.lists(submit_op, min_size=1, max_size=40))
def test_check_then_submit_checked_is_submit(submits: list[tuple[Any, ...]]) -> None:
    """The service's writer checks an order before it takes the escrow, then submits it
    with ``submit_checked``, which does not check again: the same trades and states as
    ``submit``, and what ``check`` refuses ``submit`` refuses too."""
    cfg = config(zone("a"), zone("b"))
    plain, checked = engine(cfg), engine(cfg)
    epoch = epoch_of(plain)
    for index, (_, owner, side, qty, tick, kind, zone_id) in enumerate(submits):
        # Ticks up to 40 reach past the retail price: some orders are refused.
        price = FEED_IN + tick * TICK * 3
        orders = [
            make_order(
                owner,
                side,
                qty,
                price,
                zone_id=zone_id,
                epoch_id=epoch,
                kind=kind,
                order_id=f"s{index}",
            )
            for _ in range(2)
        ]
        try:
            checked.check(orders[1], NOW)
        except DomainError as refused:
            with pytest.raises(type(refused)):
                plain.submit(orders[0], NOW)
            continue
        expected = plain.submit(orders[0], NOW)
        result = checked.submit_checked(orders[1], NOW)
        assert result.trades == expected.trades
        assert _state(result.order) == _state(expected.order)
    assert [_state(o) for o in checked.open_orders()] == [_state(o) for o in plain.open_orders()]


def _state(order: Order) -> tuple[Any, ...]:
    """An order's fields (orders compare by identity)."""
    return astuple(order)
