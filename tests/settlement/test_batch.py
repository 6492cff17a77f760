from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattx.settlement.batch import build_epoch_batch
from wattx.settlement.errors import (
    SettlementBatchError,
    TradeNotInBatchError,
    UnknownSettlementAccountError,
)
from wattx.settlement.keys import new_signer
from wattx.settlement.merkle import verify_proof
from wattx.units import wh_to_energy_base_units

from .helpers import make_trade

ACCOUNTS = {name: new_signer().address for name in ("alice", "bob", "carol", "dave")}
FEES = new_signer().address


def test_nets_one_trade_with_loss_and_fees() -> None:
    trade = make_trade("t1", "alice", "bob", 2_000, 150_000, loss_wh=60, wheeling_fee=1_000)
    batch = build_epoch_batch(7, [trade], ACCOUNTS, FEES)
    deltas = {d.address: d for d in batch.deltas}
    alice, bob = deltas[ACCOUNTS["alice"]], deltas[ACCOUNTS["bob"]]
    assert alice.energy == wh_to_energy_base_units(1_940)
    assert bob.energy == -wh_to_energy_base_units(2_000)
    assert batch.fee_energy == wh_to_energy_base_units(60)
    assert alice.credit == -(300_000 + 750 + 1_000)
    assert bob.credit == 300_000 - 750
    assert batch.fee_credit == 750 + 750 + 1_000
    assert batch.trade_count == 1
    assert batch.merkle_root == batch.leaf_of("t1").hash()


def test_accounts_that_net_to_zero_are_left_out() -> None:
    there = make_trade("t1", "alice", "bob", 1_000, 100_000, fee_bps=0, seq=1)
    back = make_trade("t2", "bob", "alice", 1_000, 100_000, fee_bps=0, seq=2)
    batch = build_epoch_batch(7, [there, back], ACCOUNTS, FEES)
    assert batch.deltas == ()
    assert batch.trade_count == 2


def test_rejects_inconsistent_trades() -> None:
    good = make_trade("t1", "alice", "bob", 1_000, 100_000)
    with pytest.raises(SettlementBatchError, match="epoch"):
        build_epoch_batch(8, [good], ACCOUNTS, FEES)
    with pytest.raises(SettlementBatchError, match="value"):
        build_epoch_batch(7, [dataclasses.replace(good, value=good.value + 1)], ACCOUNTS, FEES)
    with pytest.raises(SettlementBatchError, match="delivered"):
        build_epoch_batch(7, [dataclasses.replace(good, delivered_wh=1_001)], ACCOUNTS, FEES)
    with pytest.raises(SettlementBatchError, match="twice"):
        build_epoch_batch(7, [good, good], ACCOUNTS, FEES)
    huge = make_trade("t9", "alice", "bob", 1_000, 2**64)
    with pytest.raises(SettlementBatchError, match="uint64"):
        build_epoch_batch(7, [huge], ACCOUNTS, FEES)
    with pytest.raises(UnknownSettlementAccountError):
        build_epoch_batch(7, [make_trade("t3", "zoe", "bob", 1, 1)], ACCOUNTS, FEES)
    with pytest.raises(TradeNotInBatchError):
        build_epoch_batch(7, [good], ACCOUNTS, FEES).proof("nope")


def test_accepts_a_resolver_function() -> None:
    batch = build_epoch_batch(
        7, [make_trade("t1", "alice", "bob", 10, 1_000)], ACCOUNTS.__getitem__, FEES
    )
    assert {d.address for d in batch.deltas} == {ACCOUNTS["alice"], ACCOUNTS["bob"]}


trades_strategy = st.lists(
    st.tuples(
        st.sampled_from(sorted(ACCOUNTS)),
        st.sampled_from(sorted(ACCOUNTS)),
        st.integers(min_value=1, max_value=50_000),
        st.integers(min_value=1, max_value=400_000),
        st.integers(min_value=0, max_value=100),
        st.integers(min_value=0, max_value=500),
    ),
    max_size=40,
)


@settings(deadline=None, max_examples=60)
@given(trades_strategy)
def test_any_batch_conserves_energy_and_credit(
    specs: list[tuple[str, str, int, int, int, int]],
) -> None:
    trades = [
        make_trade(
            f"t{i}", b, s, q, p, loss_wh=min(loss, q), fee_bps=fee, wheeling_fee=fee * 10, seq=i
        )
        for i, (b, s, q, p, loss, fee) in enumerate(specs)
    ]
    batch = build_epoch_batch(7, trades, ACCOUNTS, FEES)
    assert sum(d.energy for d in batch.deltas) + batch.fee_energy == 0
    assert sum(d.credit for d in batch.deltas) + batch.fee_credit == 0
    for t in trades:
        assert verify_proof(batch.merkle_root, batch.leaf_of(t.id).hash(), batch.proof(t.id))
