"""The coupled call auction: limits hold, welfare is optimal, money and energy add up."""

from __future__ import annotations

from dataclasses import replace
from itertools import product

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wattx.domain import Order, OrderStatus, Side
from wattx.grid import Direction, GridLink, GridTree
from wattx.market import ZoneRateTable
from wattx.market.coupling import CoupledClearing, can_bind, run_coupled_auction, welfare
from wattx.market.rates import ZoneRate
from wattx.units import trade_value

from .helpers import order, rates_for

NO_LOSS = ZoneRateTable(
    same_zone_wheeling=2_000,
    same_zone_loss_bps=0,
    adjacent_wheeling=5_000,
    adjacent_loss_bps=0,
    far_wheeling=8_000,
    far_wheeling_per_km=0,
    far_loss_bps=0,
    far_loss_bps_per_km=0,
)
FREE = ZoneRateTable.lossless()
PRICES = st.integers(50, 400).map(lambda p: p * 1_000)
CAPS = st.one_of(st.none(), st.integers(0, 40))


@st.composite
def instances(
    draw: st.DrawFn, max_zones: int = 5, max_orders: int = 8, max_qty: int = 30
) -> tuple[GridTree, list[Order], list[Order]]:
    n = draw(st.integers(2, max_zones))
    zones = [f"z{i}" for i in range(n)]
    links = [
        GridLink(
            zones[i],
            zones[draw(st.integers(0, i - 1))],
            import_wh=draw(CAPS),
            export_wh=draw(CAPS),
        )
        for i in range(1, n)
    ]
    tree = GridTree.build(zones, links)
    made = draw(
        st.lists(
            st.tuples(
                st.sampled_from(zones),
                st.sampled_from([Side.BUY, Side.SELL]),
                st.integers(1, max_qty),
                PRICES,
            ),
            max_size=max_orders,
        )
    )
    orders = [
        order(f"u{k}", side, qty, price, zone) for k, (zone, side, qty, price) in enumerate(made)
    ]
    return (
        tree,
        [o for o in orders if o.side is Side.BUY],
        [o for o in orders if o.side is Side.SELL],
    )


def clone(orders: list[Order]) -> list[Order]:
    return [replace(o) for o in orders]


def unlimited(tree: GridTree) -> GridTree:
    return GridTree.build(tree.zones, [GridLink(link.child, link.parent) for link in tree.links])


def check_outcome(
    clearing: CoupledClearing,
    tree: GridTree,
    buys: list[Order],
    sells: list[Order],
    rates: dict[tuple[str, str], ZoneRate],
) -> None:
    """Every rule that holds whatever the rates: capacities, limits, conservation."""
    for report in clearing.links:
        if report.capacity_wh is not None:
            assert report.flow_wh <= report.capacity_wh
        assert report.shadow_price >= 0
        assert report.rent >= 0
    for o in (*buys, *sells):
        assert o.filled_wh + o.remaining_wh == o.qty_wh
        assert 0 <= o.filled_wh <= o.qty_wh
        if o.filled_wh:
            expected = OrderStatus.FILLED if o.remaining_wh == 0 else OrderStatus.PARTIALLY_FILLED
            assert o.status is expected
    sold = {o.id: 0 for o in sells}
    got = {o.id: 0 for o in buys}
    paid = received = wheeling = fees = 0
    for m in clearing.matches:
        assert m.rate == rates[(m.sell.zone, m.buy.zone)]
        assert m.sell.limit_price <= m.price
        assert m.delivered_wh == m.rate.delivered(m.sold_wh) <= m.sold_wh
        value = trade_value(m.sold_wh, m.price)
        cost = value + m.rate.wheeling_fee(m.sold_wh) + m.congestion_fee
        # The buyer never pays more than its landed limit per delivered kWh.
        assert 1000 * cost <= m.delivered_wh * m.buy.limit_price
        assert m.congestion_fee == sum(amount for _, amount in m.link_rents)
        sold[m.sell.id] += m.sold_wh
        got[m.buy.id] += m.delivered_wh
        paid += cost
        received += value
        wheeling += m.rate.wheeling_fee(m.sold_wh)
        fees += m.congestion_fee
    assert all(sold[o.id] == o.filled_wh for o in sells)
    assert all(got[o.id] == o.filled_wh for o in buys)
    # Money: buyers' payments = sellers' value + wheeling + congestion rent.
    assert paid == received + wheeling + clearing.rent
    assert clearing.rent == fees == sum(r.rent for r in clearing.links)
    # Energy: each link's flow is the Wh sold across it.
    for report in clearing.links:
        crossing = sum(
            m.sold_wh
            for m in clearing.matches
            if any(
                link.child == report.child and d is report.direction
                for link, d in tree.path(m.sell.zone, m.buy.zone)
            )
        )
        assert crossing == report.flow_wh


SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(instances(), st.sampled_from([NO_LOSS, FREE, ZoneRateTable()]))
def test_limits_prices_and_conservation_hold(
    case: tuple[GridTree, list[Order], list[Order]], table: ZoneRateTable
) -> None:
    tree, buys, sells = case
    rates = rates_for(tree, table)
    clearing = run_coupled_auction(buys, sells, tree, rates, fast_path=False)
    assert clearing.solved == bool(buys and sells)
    check_outcome(clearing, tree, buys, sells, rates)


@SETTINGS
@given(instances(), st.sampled_from([NO_LOSS, FREE]))
def test_active_pairs_pay_the_price_difference_as_rent(
    case: tuple[GridTree, list[Order], list[Order]], table: ZoneRateTable
) -> None:
    """Without losses: buyer price = seller price + wheeling + shadow prices on the path."""
    tree, buys, sells = case
    rates = rates_for(tree, table)
    clearing = run_coupled_auction(buys, sells, tree, rates, fast_path=False)
    shadow = {(r.child, r.direction): r.shadow_price for r in clearing.links}
    for m in clearing.matches:
        path = tree.path(m.sell.zone, m.buy.zone)
        mu = sum(shadow[(link.child, d)] for link, d in path)
        buyer_price = clearing.buyer_prices[m.buy.zone]
        seller_price = clearing.seller_prices[m.sell.zone]
        assert buyer_price is not None
        assert seller_price is not None
        assert buyer_price == seller_price + m.rate.wheeling_per_kwh + mu
        if mu > 0:
            # Prices are ordered along a congested path: dearer where the energy lands.
            assert buyer_price > seller_price + m.rate.wheeling_per_kwh


@SETTINGS
@given(instances(), st.sampled_from([NO_LOSS, FREE]))
def test_welfare_with_limits_never_exceeds_welfare_without(
    case: tuple[GridTree, list[Order], list[Order]], table: ZoneRateTable
) -> None:
    tree, buys, sells = case
    rates = rates_for(tree, table)
    limited = run_coupled_auction(clone(buys), clone(sells), tree, rates, fast_path=False)
    free = run_coupled_auction(clone(buys), clone(sells), unlimited(tree), rates, fast_path=False)
    assert welfare(limited.matches) <= welfare(free.matches)
    assert welfare(limited.matches) >= 0


def test_zero_capacities_keep_each_zone_to_itself() -> None:
    tree = GridTree.build(["p", "a", "b"], [GridLink("a", "p", 0, 0), GridLink("b", "p", 0, 0)])
    rates = rates_for(tree, FREE)
    buys = [order("x", Side.BUY, 10, 300_000, "a"), order("y", Side.BUY, 10, 200_000, "b")]
    sells = [order("z", Side.SELL, 10, 100_000, "b")]
    clearing = run_coupled_auction(buys, sells, tree, rates)
    assert [(m.buy.owner, m.sell.owner, m.sold_wh) for m in clearing.matches] == [("y", "z", 10)]
    assert all(r.flow_wh == 0 for r in clearing.links)


def test_a_binding_feeder_splits_prices_and_earns_rent() -> None:
    """Two feeders under one transformer; the sunny feeder's export limit binds."""
    tree = GridTree.build(
        ["pcc", "f1", "f2"], [GridLink("f1", "pcc", export_wh=300), GridLink("f2", "pcc")]
    )
    rates = rates_for(tree, FREE)
    sells = [order("solar", Side.SELL, 1_000, 100_000, "f1")]
    buys = [
        order("home", Side.BUY, 1_000, 300_000, "f2"),
        order("shop", Side.BUY, 200, 120_000, "f1"),
    ]
    clearing = run_coupled_auction(buys, sells, tree, rates)
    assert clearing.solved
    assert clearing.seller_prices["f1"] == 100_000
    assert clearing.buyer_prices["f2"] == 300_000
    up = next(r for r in clearing.links if r.child == "f1" and r.direction is Direction.UP)
    assert (up.flow_wh, up.capacity_wh, up.shadow_price) == (300, 300, 200_000)
    assert up.rent == 300 * 200_000 // 1_000 == clearing.rent
    assert sum(m.sold_wh for m in clearing.matches) == 500


def brute_force(
    tree: GridTree, buys: list[Order], sells: list[Order], rates: dict[tuple[str, str], ZoneRate]
) -> int:
    """The best welfare (x1000) over every integer quantity for every (ask, bid) pair."""
    pairs = [(s, b) for s in sells for b in buys]
    best = 0
    for amounts in product(*(range(min(s.qty_wh, b.qty_wh) + 1) for s, b in pairs)):
        sold = {s.id: 0 for s in sells}
        got = {b.id: 0 for b in buys}
        flow: dict[tuple[str, Direction], int] = {}
        total = 0
        for (s, b), q in zip(pairs, amounts, strict=True):
            sold[s.id] += q
            got[b.id] += q
            rate = rates[(s.zone, b.zone)]
            total += q * (b.limit_price - s.limit_price - rate.wheeling_per_kwh)
            for link, d in tree.path(s.zone, b.zone):
                flow[(link.child, d)] = flow.get((link.child, d), 0) + q
        if any(sold[s.id] > s.qty_wh for s in sells) or any(got[b.id] > b.qty_wh for b in buys):
            continue
        if any(
            (cap := tree.link(child).capacity(d)) is not None and used > cap
            for (child, d), used in flow.items()
        ):
            continue
        best = max(best, total)
    return best


@settings(max_examples=60, deadline=None)
@given(instances(max_zones=3, max_orders=4, max_qty=4), st.sampled_from([NO_LOSS, FREE]))
def test_welfare_is_optimal_on_tiny_instances(
    case: tuple[GridTree, list[Order], list[Order]], table: ZoneRateTable
) -> None:
    tree, buys, sells = case
    rates = rates_for(tree, table)
    expected = brute_force(tree, buys, sells, rates)
    clearing = run_coupled_auction(buys, sells, tree, rates, fast_path=False)
    assert welfare(clearing.matches) == expected


UNIFORM = ZoneRateTable(3_000, 0, 3_000, 0, 3_000, 0, 0, 0)


@SETTINGS
@given(instances(), st.sampled_from([UNIFORM, FREE]))
def test_fast_path_agrees_with_the_program_when_no_limit_can_bind(
    case: tuple[GridTree, list[Order], list[Order]], table: ZoneRateTable
) -> None:
    tree, buys, sells = case
    tree = unlimited(tree)
    rates = rates_for(tree, table)
    assert not can_bind(tree, buys, sells, rates)
    fast = run_coupled_auction(clone(buys), clone(sells), tree, rates)
    program = run_coupled_auction(clone(buys), clone(sells), tree, rates, fast_path=False)
    assert not fast.solved
    assert program.solved == bool(buys and sells)
    assert welfare(fast.matches) == welfare(program.matches)
    assert fast.rent == program.rent == 0


def test_a_tight_link_turns_the_fast_path_off() -> None:
    tree = GridTree.build(["p", "a"], [GridLink("a", "p", export_wh=5)])
    rates = rates_for(tree, FREE)
    sells = [order("s", Side.SELL, 10, 100_000, "a")]
    buys = [order("b", Side.BUY, 10, 200_000, "p")]
    assert can_bind(tree, buys, sells, rates)
    clearing = run_coupled_auction(buys, sells, tree, rates)
    assert clearing.solved
    assert sum(m.sold_wh for m in clearing.matches) == 5


def test_self_trade_the_newer_order_leaves_and_the_program_is_solved_again() -> None:
    tree = GridTree.build(["p", "a"], [GridLink("a", "p", export_wh=50)])
    rates = rates_for(tree, FREE)
    buys = [order("same", Side.BUY, 10, 200_000, "p")]
    sells = [
        order("same", Side.SELL, 10, 100_000, "a"),
        order("other", Side.SELL, 10, 150_000, "a"),
    ]
    clearing = run_coupled_auction(buys, sells, tree, rates)
    assert [(m.buy.owner, m.sell.owner) for m in clearing.matches] == [("same", "other")]
    assert sells[0].filled_wh == 0


@settings(max_examples=80, deadline=None)
@given(
    instances(max_zones=6, max_orders=12, max_qty=1_000_000),
    st.sampled_from([FREE, ZoneRateTable()]),
)
def test_program_is_always_feasible_and_bounded(
    case: tuple[GridTree, list[Order], list[Order]], table: ZoneRateTable
) -> None:
    """Any orders, any capacities (zero included): the program solves to an optimum."""
    tree, buys, sells = case
    rates = rates_for(tree, table)
    clearing = run_coupled_auction(buys, sells, tree, rates, fast_path=False)
    assert clearing.solved == bool(buys and sells)
    check_outcome(clearing, tree, buys, sells, rates)


@settings(max_examples=60, deadline=None)
@given(instances(max_zones=4, max_orders=60, max_qty=50), st.sampled_from([NO_LOSS, FREE]))
def test_coarse_segments_reach_the_same_optimum_as_one_column_per_level(
    case: tuple[GridTree, list[Order], list[Order]], table: ZoneRateTable
) -> None:
    """The program starts from a few segments and cuts them finer; the optimum is exact."""
    tree, buys, sells = case
    rates = rates_for(tree, table)
    coarse = run_coupled_auction(clone(buys), clone(sells), tree, rates, fast_path=False, pieces=2)
    exact = run_coupled_auction(
        clone(buys), clone(sells), tree, rates, fast_path=False, pieces=10**9
    )
    assert welfare(coarse.matches) == welfare(exact.matches)


def test_one_sided_orders_trade_nothing_without_a_program() -> None:
    tree = GridTree.build(["p", "a"], [GridLink("a", "p", export_wh=5)])
    rates = rates_for(tree, FREE)
    clearing = run_coupled_auction([], [order("s", Side.SELL, 10, 100_000, "a")], tree, rates)
    assert clearing.matches == []
    assert not clearing.solved
    assert clearing.seller_prices == {"a": None, "p": None}
    assert all(r.flow_wh == 0 and r.rent == 0 for r in clearing.links)
