"""Self-custody on chain: withdrawals by operator permit only, and the relay's allow-list;
on the embedded chain and on anvil."""

from __future__ import annotations

import dataclasses

import pytest

from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.errors import ContractRevertError, InsufficientBalanceError
from wattx.settlement.keys import new_signer
from wattx.settlement.port import Asset, Balances, RelayRefusedError, Signer

from .self_custody import permit_args, self_custody_user, signed_call


def _deposit_by_relay(chain: ContractChain, user: Signer, amount: int) -> None:
    marketplace = chain.deployment.address_of("Marketplace")
    approve = signed_call(chain, user, "CreditToken", "approve", marketplace, amount)
    chain.send_raw_transaction(approve, sender=user.address)
    deposit = signed_call(chain, user, "Marketplace", "deposit_credit", amount)
    result = chain.send_raw_transaction(deposit, sender=user.address)
    (event,) = [e for e in result.events if e.name == "Deposited"]
    assert event.args["account"] == user.address
    assert event.args["amount"] == amount


def test_relayed_deposit_and_permit_withdrawal(chain: ContractChain) -> None:
    user = self_custody_user(chain, credit=3_000_000)
    _deposit_by_relay(chain, user, 3_000_000)
    assert chain.balances(user.address) == Balances(0, 0, 3_000_000, 0)

    # The plain withdrawal is closed to a permit-only account, relayed or not.
    with pytest.raises(ContractRevertError, match="withdrawal needs a permit"):
        chain.withdraw(user, Asset.CREDIT, 1)
    plain = signed_call(chain, user, "Marketplace", "withdraw_credit", 1)
    with pytest.raises(RelayRefusedError, match="only approve, deposit"):
        chain.send_raw_transaction(plain, sender=user.address)

    deadline = chain.timestamp() + 600
    permit = chain.sign_withdraw_permit(user.address, Asset.CREDIT, 1_000_000, 7, deadline)
    raw = signed_call(chain, user, "Marketplace", "withdraw_with_permit", *permit_args(permit))
    result = chain.send_raw_transaction(raw, sender=user.address)
    assert {e.name for e in result.events} >= {"PermitUsed", "Withdrawn"}
    assert chain.balances(user.address) == Balances(0, 0, 2_000_000, 0)
    assert chain.wallet_balance(user.address, Asset.CREDIT) == 1_000_000
    assert chain.permit_used(user.address, 7)


def test_permit_rules(chain: ContractChain) -> None:
    user = self_custody_user(chain, credit=1_000_000)
    _deposit_by_relay(chain, user, 1_000_000)
    deadline = chain.timestamp() + 600

    def send(permit_fields: tuple[object, ...], signer: Signer = user) -> None:
        chain.transact("Marketplace", "withdraw_with_permit", *permit_fields, signer=signer)

    # Signed by someone who is not an operator.
    good = chain.sign_withdraw_permit(user.address, Asset.CREDIT, 100, 1, deadline)
    forged_key = new_signer()
    forged = ContractChain(chain.transport, chain.deployment, forged_key).sign_withdraw_permit(
        user.address, Asset.CREDIT, 100, 1, deadline
    )
    with pytest.raises(ContractRevertError, match="permit not signed by an operator"):
        send(permit_args(forged))
    # A permit for one amount does not pay another.
    with pytest.raises(ContractRevertError, match="permit not signed by an operator"):
        send(permit_args(dataclasses.replace(good, amount=101)))
    # Another account cannot use it.
    other = self_custody_user(chain)
    with pytest.raises(ContractRevertError, match="permit not signed by an operator"):
        send(permit_args(good), signer=other)

    send(permit_args(good))
    with pytest.raises(ContractRevertError, match="permit already used"):
        send(permit_args(good))

    over = chain.sign_withdraw_permit(user.address, Asset.CREDIT, 1_000_000, 2, deadline)
    with pytest.raises(InsufficientBalanceError, match="withdrawal exceeds free credit"):
        send(permit_args(over))

    chain.lock(user.address, 0, 999_000)
    locked = chain.sign_withdraw_permit(user.address, Asset.CREDIT, 901, 3, deadline)
    with pytest.raises(InsufficientBalanceError, match="withdrawal exceeds free credit"):
        send(permit_args(locked))

    cancelled = chain.sign_withdraw_permit(user.address, Asset.CREDIT, 900, 4, deadline)
    chain.cancel_permit(user.address, 4)
    with pytest.raises(ContractRevertError, match="permit already used"):
        send(permit_args(cancelled))
    with pytest.raises(ContractRevertError, match="permit already used"):
        chain.cancel_permit(user.address, 4)

    late = chain.sign_withdraw_permit(user.address, Asset.CREDIT, 900, 5, chain.timestamp() + 5)
    chain.advance_time(60)
    with pytest.raises(ContractRevertError, match="permit expired"):
        send(permit_args(late))
    assert chain.balances(user.address) == Balances(0, 0, 900, 999_000)


def test_only_operators_mark_accounts(chain: ContractChain) -> None:
    user = self_custody_user(chain)
    with pytest.raises(ContractRevertError, match="caller is not an operator"):
        chain.transact("Marketplace", "set_permit_only", user.address, False, signer=user)
    with pytest.raises(ContractRevertError, match="caller is not an operator"):
        chain.transact("Marketplace", "cancel_permit", user.address, 1, signer=user)


def test_relay_refuses_what_is_not_the_callers_or_not_allowed(chain: ContractChain) -> None:
    user = self_custody_user(chain, credit=10)
    marketplace = chain.deployment.address_of("Marketplace")
    approve = signed_call(chain, user, "CreditToken", "approve", marketplace, 10)
    with pytest.raises(RelayRefusedError, match="not signed by your address"):
        chain.send_raw_transaction(approve, sender=new_signer().address)
    other_chain = signed_call(
        chain,
        user,
        "CreditToken",
        "approve",
        marketplace,
        10,
        chain_id=chain.transport.chain_id + 1,
    )
    with pytest.raises(RelayRefusedError, match="another chain"):
        chain.send_raw_transaction(other_chain, sender=user.address)
    elsewhere = signed_call(chain, user, "CreditToken", "approve", user.address, 10)
    with pytest.raises(RelayRefusedError, match="approvals of the Marketplace"):
        chain.send_raw_transaction(elsewhere, sender=user.address)
    mint = signed_call(chain, user, "CreditToken", "mint", user.address, 10)
    with pytest.raises(RelayRefusedError, match="only approve, deposit"):
        chain.send_raw_transaction(mint, sender=user.address)
    with pytest.raises(RelayRefusedError, match="not a signed Ethereum transaction"):
        chain.send_raw_transaction(b"\xf8\x01garbage", sender=user.address)
    assert chain.wallet_balance(user.address, Asset.CREDIT) == 10


def test_the_relay_sends_a_self_custody_vote_and_nothing_else_of_governance(
    chain: ContractChain,
) -> None:
    from eth_utils import keccak

    from wattx.settlement.deploy import parameter_key
    from wattx.settlement.port import MeterMint

    from .helpers import ZONE

    user = self_custody_user(chain)
    if not chain.view("Registry", "zones", ZONE):
        chain.add_zone(ZONE)
    meter = keccak(text=f"voter-{user.address}")
    chain.register_meter(meter, user.address, ZONE, 1_500)
    chain.mint_readings([MeterMint(meter, 1, user.address, 1_500)])
    chain.propose(chain_operator(chain), parameter_key("market_fee_bps"), 30)
    proposal_id = chain.proposal_count()

    vote = signed_call(chain, user, "Governance", "vote", proposal_id, True)
    result = chain.send_raw_transaction(vote, sender=user.address)
    (cast,) = [e for e in result.events if e.name == "VoteCast"]
    assert cast.args["voter"] == user.address
    assert cast.args["weight"] == 1_500
    proposal = chain.proposal(proposal_id)
    assert proposal is not None
    assert proposal.votes_for == 1_500
    assert chain.has_voted(proposal_id, user.address)

    for function, args in (
        ("propose", (parameter_key("market_fee_bps"), 35)),
        ("execute", (proposal_id,)),
    ):
        raw = signed_call(chain, user, "Governance", function, *args, nonce=1)
        with pytest.raises(RelayRefusedError, match="governance vote calls are relayed"):
            chain.send_raw_transaction(raw, sender=user.address)
    assert chain.proposal_count() == proposal_id


def chain_operator(chain: ContractChain) -> Signer:
    """The operator's signer (an active participant, so it may propose)."""
    return chain._operator
