"""Property: any random epoch settles once, conserves value, overdraws no one, and
every trade's proof verifies on chain while a tampered trade's does not (embedded)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wattx.settlement.batch import build_epoch_batch
from wattx.settlement.embedded import EmbeddedChain
from wattx.settlement.errors import EpochAlreadySettledError
from wattx.settlement.port import Balances, Signer

from .helpers import funded_trader, make_trade

TRADERS = 5
ENERGY_WH = 200_000
CREDIT = 200_000_000


@pytest.fixture(scope="module")
def traders(embedded_chain: EmbeddedChain) -> dict[str, Signer]:
    # Funded once: hypothesis examples roll back to this state.
    return {
        f"u{i}": funded_trader(
            embedded_chain, energy_wh=ENERGY_WH, credit=CREDIT, meter_seed=str(i)
        )
        for i in range(TRADERS)
    }


trade_specs = st.lists(
    st.tuples(
        st.integers(0, TRADERS - 1),
        st.integers(0, TRADERS - 1),
        st.integers(1, 10_000),
        st.integers(1, 300_000),
        st.integers(0, 50),
        st.integers(0, 200),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    deadline=None, max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(specs=trade_specs, tamper=st.sampled_from(["qty_wh", "price", "buyer_fee", "epoch_id"]))
def test_random_epoch_settles_once_and_proves_every_trade(
    embedded_chain: EmbeddedChain,
    traders: dict[str, Signer],
    specs: list[tuple[int, int, int, int, int, int]],
    tamper: str,
) -> None:
    chain = embedded_chain
    snapshot = chain.snapshot()
    try:
        trades = [
            make_trade(
                f"t{i}",
                f"u{b}",
                f"u{s}",
                q,
                p,
                loss_wh=min(loss, q),
                fee_bps=fee,
                wheeling_fee=fee,
                seq=i,
            )
            for i, (b, s, q, p, loss, fee) in enumerate(specs)
        ]
        book = {name: t.address for name, t in traders.items()}
        fee_account = chain.deployment.fee_account
        before = {a: chain.balances(a) for a in [*book.values(), fee_account]}
        batch = build_epoch_batch(7, trades, book, fee_account)

        chain.settle_epoch(batch)

        after = {a: chain.balances(a) for a in before}
        energy_change = sum(after[a].free_energy - before[a].free_energy for a in after)
        credit_change = sum(after[a].free_credit - before[a].free_credit for a in after)
        assert energy_change == credit_change == 0
        assert all(min(vars_of(b)) >= 0 for b in after.values())
        with pytest.raises(EpochAlreadySettledError):
            chain.settle_epoch(batch)
        for trade in trades:
            leaf = batch.leaf_of(trade.id)
            proof = batch.proof(trade.id)
            assert chain.verify_trade_proof(7, leaf.hash(), proof)
            forged = dataclasses.replace(leaf, **{tamper: getattr(leaf, tamper) + 1})
            assert not chain.verify_trade_proof(7, forged.hash(), proof)
    finally:
        chain.revert(snapshot)


def vars_of(balances: Balances) -> list[int]:
    return [getattr(balances, f.name) for f in dataclasses.fields(balances)]
