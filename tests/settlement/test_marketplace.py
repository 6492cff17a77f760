"""Escrow and epoch settlement rules, on the embedded chain and on anvil."""

from __future__ import annotations

from typing import Any

import pytest

from wattx.settlement.batch import AccountDelta, build_epoch_batch
from wattx.settlement.contract_chain import STANDING_APPROVAL, ContractChain
from wattx.settlement.errors import (
    ChainError,
    ChainPermissionError,
    ConservationViolatedError,
    EpochAlreadySettledError,
    FeeAccountMismatchError,
    InsufficientBalanceError,
)
from wattx.settlement.keys import new_signer
from wattx.settlement.port import Asset, Balances, TxResult
from wattx.units import wh_to_energy_base_units

from .helpers import admitted_user, funded_trader, make_trade

KWH = wh_to_energy_base_units(1_000)


def test_deposit_withdraw_and_free_balance_only(chain: ContractChain) -> None:
    user = funded_trader(chain, energy_wh=2_000, credit=5_000_000)
    assert chain.balances(user.address) == Balances(2 * KWH, 0, 5_000_000, 0)
    chain.lock(user.address, KWH, 1_000_000)
    assert chain.balances(user.address) == Balances(KWH, KWH, 4_000_000, 1_000_000)
    with pytest.raises(InsufficientBalanceError, match="withdrawal exceeds free energy"):
        chain.withdraw(user, Asset.ENERGY, KWH + 1)
    chain.withdraw(user, Asset.CREDIT, 4_000_000)
    assert chain.wallet_balance(user.address, Asset.CREDIT) == 4_000_000
    chain.unlock(user.address, KWH, 0)
    chain.withdraw(user, Asset.ENERGY, 2 * KWH)
    assert chain.balances(user.address) == Balances(0, 0, 0, 1_000_000)


def test_lock_and_unlock_rules(chain: ContractChain) -> None:
    user = funded_trader(chain, credit=1_000)
    with pytest.raises(InsufficientBalanceError, match="lock exceeds free credit"):
        chain.lock(user.address, 0, 1_001)
    with pytest.raises(InsufficientBalanceError, match="unlock exceeds locked credit"):
        chain.unlock(user.address, 0, 1)
    with pytest.raises(ChainPermissionError, match="caller is not an operator"):
        chain.transact("Marketplace", "lock", user.address, 0, 1, signer=user)


def test_only_admitted_participants_deposit(chain: ContractChain) -> None:
    stranger = new_signer()
    chain.mint_credit(stranger.address, 10)
    with pytest.raises(ChainPermissionError, match="not an active participant"):
        chain.deposit(stranger, Asset.CREDIT, 10)


def test_only_an_accounts_first_deposit_of_an_asset_sends_an_approve(
    chain: ContractChain, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = admitted_user(chain)
    marketplace = chain.deployment.address_of("Marketplace")
    chain.mint_credit(user.address, 3_000)
    sent: list[str] = []
    transact = chain.transact

    def counted(contract: str, function: str, *args: Any, **kwargs: Any) -> TxResult:
        sent.append(function)
        return transact(contract, function, *args, **kwargs)

    monkeypatch.setattr(chain, "transact", counted)
    chain.deposit(user, Asset.CREDIT, 1_000)
    assert sent == ["approve", "deposit_credit"]
    assert chain.view("CreditToken", "allowance", user.address, marketplace) == STANDING_APPROVAL
    chain.deposit(user, Asset.CREDIT, 1_000)
    chain.deposit(user, Asset.CREDIT, 1_000)
    assert sent == ["approve", "deposit_credit", "deposit_credit", "deposit_credit"]
    monkeypatch.undo()
    assert chain.view("CreditToken", "allowance", user.address, marketplace) == STANDING_APPROVAL
    assert chain.balances(user.address) == Balances(0, 0, 3_000, 0)
    assert chain.wallet_balance(user.address, Asset.CREDIT) == 0
    # The Marketplace pulls from the caller only: another account's deposit cannot
    # take what the approving account holds in its wallet.
    chain.mint_credit(user.address, 500)
    other = funded_trader(chain, credit=1)
    with pytest.raises(ChainError):
        chain.transact("Marketplace", "deposit_credit", 500, signer=other)
    assert chain.wallet_balance(user.address, Asset.CREDIT) == 500
    assert chain.balances(user.address) == Balances(0, 0, 3_000, 0)


def test_settles_an_epoch_once_and_emits_events(chain: ContractChain) -> None:
    seller = funded_trader(chain, energy_wh=3_000)
    buyer = funded_trader(chain, credit=2_000_000)
    chain.lock(seller.address, 3 * KWH, 0)
    chain.lock(buyer.address, 0, 2_000_000)
    book = {"s": seller.address, "b": buyer.address}
    trade = make_trade("t1", "b", "s", 3_000, 200_000, loss_wh=30, wheeling_fee=500)
    batch = build_epoch_batch(7, [trade], book, chain.deployment.fee_account)
    start = chain.block_number()

    result = chain.settle_epoch(batch)

    fees = trade.fees
    assert chain.balances(seller.address) == Balances(0, 0, trade.seller_receives, 0)
    assert chain.balances(buyer.address) == Balances(
        wh_to_energy_base_units(2_970), 0, 0, 2_000_000 - trade.buyer_pays
    )
    assert chain.balances(chain.deployment.fee_account) == Balances(
        wh_to_energy_base_units(30), 0, fees, 0
    )
    assert chain.is_settled(7)
    assert chain.epoch_root(7) == batch.merkle_root
    names = [e.name for e in result.events]
    assert names.count("AccountSettled") == 2
    assert "EpochSettled" in names
    assert any(e.name == "EpochSettled" for e in chain.events_since(start))
    with pytest.raises(EpochAlreadySettledError):
        chain.settle_epoch(batch)


def test_rejects_unbalanced_or_overdrawn_batches(chain: ContractChain) -> None:
    seller = funded_trader(chain, energy_wh=1_000)
    buyer = funded_trader(chain, credit=100_000)
    book = {"s": seller.address, "b": buyer.address}
    fee_account = chain.deployment.fee_account
    batch = build_epoch_batch(
        9, [make_trade("t", "b", "s", 1_000, 50_000, epoch_id=9)], book, fee_account
    )
    greedy = AccountDelta(buyer.address, 1, 0)
    with pytest.raises(ConservationViolatedError, match="energy not conserved"):
        chain.transact("Marketplace", "settle_epoch", 9, bytes(32), 0, [greedy.as_tuple()], 0, 0)
    with pytest.raises(ConservationViolatedError, match="credit not conserved"):
        chain.transact(
            "Marketplace", "settle_epoch", 9, bytes(32), 0, [(buyer.address, 0, 5)], 0, 0
        )
    overdrawn = build_epoch_batch(
        9, [make_trade("t", "b", "s", 1_000, 500_000, epoch_id=9)], book, fee_account
    )
    with pytest.raises(InsufficientBalanceError, match="credit balance would go negative"):
        chain.settle_epoch(overdrawn)
    too_much_energy = build_epoch_batch(
        9, [make_trade("t", "b", "s", 1_001, 1_000, epoch_id=9)], book, fee_account
    )
    with pytest.raises(InsufficientBalanceError, match="energy balance would go negative"):
        chain.settle_epoch(too_much_energy)
    assert not chain.is_settled(9)
    chain.settle_epoch(batch)
    assert chain.is_settled(9)


def test_settlement_guards(chain: ContractChain) -> None:
    user = admitted_user(chain)
    empty = build_epoch_batch(3, [], {}, chain.deployment.fee_account)
    with pytest.raises(ChainPermissionError):
        chain.transact("Marketplace", "settle_epoch", 3, bytes(32), 0, [], 0, 0, signer=user)
    with pytest.raises(FeeAccountMismatchError):
        chain.settle_epoch(build_epoch_batch(3, [], {}, user.address))
    chain.settle_epoch(empty)
    assert chain.is_settled(3)


def test_trade_proofs_verify_on_chain(chain: ContractChain) -> None:
    seller = funded_trader(chain, energy_wh=5_000)
    buyer = funded_trader(chain, credit=5_000_000)
    book = {"s": seller.address, "b": buyer.address}
    trades = [make_trade(f"t{i}", "b", "s", 500 + i, 100_000 + i, seq=i) for i in range(5)]
    batch = build_epoch_batch(7, trades, book, chain.deployment.fee_account)
    assert not chain.verify_trade_proof(7, batch.leaf_of("t0").hash(), batch.proof("t0"))
    chain.settle_epoch(batch)
    for t in trades:
        leaf = batch.leaf_of(t.id)
        assert chain.view("Marketplace", "trade_leaf", leaf.as_tuple()) == leaf.hash()
        assert chain.verify_trade_proof(7, leaf.hash(), batch.proof(t.id))
        assert chain.view("Marketplace", "verify_trade", 7, leaf.as_tuple(), batch.proof(t.id))
    tampered = make_trade("t0", "b", "s", 501, 100_000)
    tampered_leaf = build_epoch_batch(7, [tampered], book, chain.deployment.fee_account).leaf_of(
        "t0"
    )
    assert not chain.verify_trade_proof(7, tampered_leaf.hash(), batch.proof("t0"))
    assert not chain.view(
        "Marketplace", "verify_trade", 7, tampered_leaf.as_tuple(), batch.proof("t0")
    )
    assert not chain.verify_trade_proof(8, batch.leaf_of("t0").hash(), batch.proof("t0"))
