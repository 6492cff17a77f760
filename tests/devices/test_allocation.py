"""Allocation of metered energy to trades, and the measured batch: properties."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.helpers import make_trade
from wattx.devices.allocation import (
    allocate,
    cap_to_credit,
    reconcile,
    refunded_outcome,
    settle_delivery,
)
from wattx.settlement.batch import MeasuredDelivery, build_epoch_batch

ADDRESSES = {f"u{i}": "0x" + f"{i + 1:040x}" for i in range(4)}
FEE_ACCOUNT = "0x" + "f" * 40


@given(
    metered=st.integers(0, 50_000),
    caps=st.lists(st.integers(0, 10_000), min_size=1, max_size=20),
)
def test_allocation_never_exceeds_what_was_metered_or_traded(metered: int, caps: list[int]) -> None:
    shares = allocate(metered, caps)
    assert len(shares) == len(caps)
    assert all(0 <= s <= c for s, c in zip(shares, caps, strict=True))
    # Everything metered is allocated, up to what was traded.
    assert sum(shares) == min(metered, sum(caps))


def test_allocation_is_pro_rata_with_largest_remainders() -> None:
    # 10 Wh over 3 equal trades: 3 each, the extra Wh to the first (ties by order).
    assert allocate(10, [5, 5, 5]) == [4, 3, 3]
    # 7 over caps 1 and 9: 0.7 and 6.3 -> 0 and 6, the extra to the 0.7 remainder.
    assert allocate(7, [1, 9]) == [1, 6]
    assert allocate(100, [30, 20]) == [30, 20]
    assert allocate(0, [30, 20]) == [0, 0]


trades_st = st.lists(
    st.tuples(
        st.integers(0, 3),  # buyer
        st.integers(0, 3),  # seller
        st.integers(1, 5_000),  # qty
        st.integers(1, 400_000),  # price
        st.integers(0, 30),  # loss wh
        st.integers(0, 60),  # fee bps
    ),
    min_size=1,
    max_size=15,
)


@settings(max_examples=200, deadline=None)
@given(
    specs=trades_st,
    exports=st.lists(st.integers(0, 20_000), min_size=4, max_size=4),
    imports=st.lists(st.integers(0, 20_000), min_size=4, max_size=4),
    retail=st.integers(0, 1_000_000),
)
def test_measured_epoch_conserves_energy_and_money(
    specs: list[tuple[int, int, int, int, int, int]],
    exports: list[int],
    imports: list[int],
    retail: int,
) -> None:
    trades = [
        make_trade(
            f"t{n}",
            f"u{b}",
            f"u{s}",
            q,
            p,
            loss_wh=min(loss, q - 1),
            fee_bps=fee,
            wheeling_fee=fee,
            seq=n,
        )
        for n, (b, s, q, p, loss, fee) in enumerate(specs)
    ]
    outcomes = reconcile(
        trades,
        {f"u{i}": e for i, e in enumerate(exports)},
        {f"u{i}": m for i, m in enumerate(imports)},
        {"a": retail},
    )
    # Per party, never more than metered; per trade, never more than traded.
    for i in range(4):
        sold = [o for t in trades if t.seller == f"u{i}" for o in [outcomes[t.id]]]
        bought = [o for t in trades if t.buyer == f"u{i}" for o in [outcomes[t.id]]]
        assert sum(o.seller_export_wh for o in sold) <= exports[i]
        assert sum(o.buyer_import_wh for o in bought) <= imports[i]
        assert sum(o.delivered_wh for o in bought) <= imports[i]
    by_id = {t.id: t for t in trades}
    for o in outcomes.values():
        trade = by_id[o.trade_id]
        assert 0 <= o.delivered_wh <= trade.delivered_wh <= trade.qty_wh
        assert o.delivered_wh <= o.seller_export_wh
        assert 0 <= o.refund <= trade.value
    measured = {
        t: MeasuredDelivery(o.delivered_wh, o.refund, o.imbalance_charge)
        for t, o in outcomes.items()
    }
    batch = build_epoch_batch(7, trades, ADDRESSES, FEE_ACCOUNT, measured)
    assert sum(d.energy for d in batch.deltas) + batch.fee_energy == 0
    assert sum(d.credit for d in batch.deltas) + batch.fee_credit == 0
    for leaf, trade in zip(batch.leaves, sorted(trades, key=lambda t: t.seq), strict=True):
        assert leaf.delivered_wh == outcomes[trade.id].delivered_wh


def test_full_delivery_settles_like_a_trade_without_devices() -> None:
    trades = [make_trade("t1", "u0", "u1", 1_000, 150_000, loss_wh=10, wheeling_fee=5)]
    outcome = settle_delivery(trades[0], 1_000, 990, 300_000)
    assert (outcome.delivered_wh, outcome.refund, outcome.imbalance_charge) == (990, 0, 0)
    plain = build_epoch_batch(7, trades, ADDRESSES, FEE_ACCOUNT)
    measured = build_epoch_batch(
        7, trades, ADDRESSES, FEE_ACCOUNT, {"t1": MeasuredDelivery(990, 0, 0)}
    )
    assert plain.deltas == measured.deltas
    assert plain.merkle_root == measured.merkle_root


def test_seller_stopping_halfway() -> None:
    trade = make_trade("t1", "u0", "u1", 1_000, 150_000)
    # The seller exported 500 of 1,000 Wh; the buyer drew everything it could.
    outcome = settle_delivery(trade, 500, 1_000, 300_000)
    assert outcome.delivered_wh == 500
    assert outcome.refund == trade.value // 2 == 75_000
    assert outcome.imbalance_charge == 500 * 300_000 // 1_000 == 150_000
    # The buyer only drew 200 Wh: the rest is undelivered whatever the seller did.
    assert settle_delivery(trade, 1_000, 200, 0).delivered_wh == 200


@given(
    trades=st.lists(
        st.tuples(st.integers(0, 2), st.integers(1, 5_000), st.integers(0, 5_000)),
        min_size=1,
        max_size=8,
    ),
    credit=st.lists(st.integers(-1_000_000, 3_000_000), min_size=3, max_size=3),
)
@settings(max_examples=200)
def test_capping_never_takes_a_seller_below_zero(
    trades: list[tuple[int, int, int]], credit: list[int]
) -> None:
    made = [
        make_trade(f"t{i}", "buyer", f"s{seller}", qty, 150_000, seq=i)
        for i, (seller, qty, _) in enumerate(trades)
    ]
    outcomes = {
        t.id: settle_delivery(t, export, t.delivered_wh, 300_000)
        for t, (_, _, export) in zip(made, trades, strict=True)
    }
    free = {f"s{i}": c for i, c in enumerate(credit)}
    capped = cap_to_credit(made, outcomes, free)
    for i, c in enumerate(credit):
        own = [capped[t.id] for t in made if t.seller == f"s{i}"]
        owed = [outcomes[t.id] for t in made if t.seller == f"s{i}"]
        paid = sum(o.refund + o.imbalance_charge for o in own)
        # Never more than the seller held (nor than it owed), and all of it when it held enough.
        assert paid == min(max(c, 0), sum(o.refund + o.imbalance_charge for o in owed))
        assert paid + sum(o.shortfall for o in own) == sum(
            o.refund + o.imbalance_charge for o in owed
        )
        for got, was in zip(own, owed, strict=True):
            assert 0 <= got.refund <= was.refund
            assert 0 <= got.imbalance_charge <= was.imbalance_charge
            # The refund is covered before the charge.
            assert got.imbalance_charge == 0 or got.refund == was.refund
            assert got.delivered_wh == was.delivered_wh


def test_a_refunded_trade_is_wholly_undelivered() -> None:
    trade = make_trade("t", "b", "s", 1_000, 150_000)
    outcome = refunded_outcome(trade, 300_000)
    assert (outcome.delivered_wh, outcome.refund) == (0, trade.value)
    assert outcome.imbalance_charge == trade.delivered_wh * 300_000 // 1_000
