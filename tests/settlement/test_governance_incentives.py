"""Governance and network incentives, on the embedded chain and on anvil.

Test deployments use a 3,600 s voting period, a 600 s timelock and a quorum of
1,000 Wh of verified generation.
"""

from __future__ import annotations

import pytest
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.deploy import parameter_key
from wattx.settlement.embedded import EmbeddedChain
from wattx.settlement.errors import ChainPermissionError, ContractRevertError, GovernanceRuleError
from wattx.settlement.port import Asset, MeterMint, ParticipantRole

from .helpers import ZONE, admitted_user

FEE = parameter_key("market_fee_bps")


def _voter(chain: ContractChain, wh: int, name: str) -> object:
    voter = admitted_user(chain)
    if not chain.view("Registry", "zones", ZONE):
        chain.add_zone(ZONE)
    meter = keccak(text=f"{name}-{voter.address}")
    chain.register_meter(meter, voter.address, ZONE, wh)
    chain.mint_readings([MeterMint(meter, 1, voter.address, wh)])
    return voter


def test_a_passed_proposal_executes_after_the_timelock(chain: ContractChain) -> None:
    big, small = _voter(chain, 900, "big"), _voter(chain, 200, "small")
    assert chain.view("Governance", "parameters", FEE) == 25
    chain.transact("Governance", "propose", FEE, 40, signer=big)
    pid = chain.view("Governance", "proposal_count")
    chain.transact("Governance", "vote", pid, True, signer=big)
    chain.transact("Governance", "vote", pid, False, signer=small)
    with pytest.raises(GovernanceRuleError, match="already voted"):
        chain.transact("Governance", "vote", pid, True, signer=big)
    with pytest.raises(GovernanceRuleError, match="voting still open"):
        chain.transact("Governance", "execute", pid)
    chain.advance_time(3_600)
    with pytest.raises(GovernanceRuleError, match="timelock not elapsed"):
        chain.transact("Governance", "execute", pid)
    chain.advance_time(600)
    chain.transact("Governance", "execute", pid)
    assert chain.view("Governance", "parameters", FEE) == 40
    with pytest.raises(GovernanceRuleError, match="proposal already executed"):
        chain.transact("Governance", "execute", pid)


def test_votes_after_the_deadline_and_without_weight_are_rejected(chain: ContractChain) -> None:
    voter = _voter(chain, 1_000, "v")
    chain.transact("Governance", "propose", FEE, 30, signer=voter)
    pid = chain.view("Governance", "proposal_count")
    with pytest.raises(GovernanceRuleError, match="no voting weight"):
        chain.transact("Governance", "vote", pid, True, signer=admitted_user(chain))
    chain.advance_time(3_600)
    with pytest.raises(GovernanceRuleError, match="voting has ended"):
        chain.transact("Governance", "vote", pid, True, signer=voter)


def test_below_quorum_and_rejected_proposals_do_not_execute(chain: ContractChain) -> None:
    small, other = _voter(chain, 999, "small"), _voter(chain, 999, "other")
    chain.transact("Governance", "propose", FEE, 30, signer=small)
    below = chain.view("Governance", "proposal_count")
    chain.transact("Governance", "vote", below, True, signer=small)
    chain.transact("Governance", "propose", FEE, 35, signer=small)
    rejected = chain.view("Governance", "proposal_count")
    chain.transact("Governance", "vote", rejected, True, signer=small)
    chain.transact("Governance", "vote", rejected, False, signer=other)
    chain.advance_time(4_200)
    with pytest.raises(GovernanceRuleError, match="quorum not reached"):
        chain.transact("Governance", "execute", below)
    with pytest.raises(GovernanceRuleError, match="proposal rejected"):
        chain.transact("Governance", "execute", rejected)
    assert chain.view("Governance", "parameters", FEE) == 25


def test_proposal_rules(chain: ContractChain) -> None:
    voter = _voter(chain, 10, "p")
    with pytest.raises(ContractRevertError, match="unknown parameter"):
        chain.transact("Governance", "propose", parameter_key("nope"), 1, signer=voter)
    with pytest.raises(ContractRevertError, match="above the parameter's maximum"):
        chain.transact("Governance", "propose", FEE, 1_001, signer=voter)
    with pytest.raises(ContractRevertError, match="parameter already defined"):
        chain.transact("Governance", "define_parameter", "market_fee_bps", 1, 2)


def _report(chain: ContractChain, period: int, *reports: tuple[bytes, int, int]) -> object:
    return chain.transact("NetworkIncentives", "report_period", period, list(reports))


def test_incentives_reward_slash_and_claim(chain: ContractChain) -> None:
    owner = admitted_user(chain, ParticipantRole.NODE_OPERATOR)
    auditor = admitted_user(chain, ParticipantRole.AUDITOR)
    node, other = keccak(text="node-1"), keccak(text="node-2")
    chain.transact("NetworkIncentives", "register_node", node, owner.address)
    chain.transact("NetworkIncentives", "register_node", other, owner.address)
    # Defaults: base 1,000 per period, 100 per kWh routed.
    with pytest.raises(ContractRevertError, match="reward pool exhausted"):
        _report(chain, 1, (node, 10_000, 0))
    incentives = chain.deployment.contracts["NetworkIncentives"]
    chain.mint_credit(chain.operator_address, 10_000)
    chain.transact("CreditToken", "approve", incentives, 10_000)
    chain.transact("NetworkIncentives", "fund", 10_000)
    # Both nodes in one batch: 500 + 2,000 and 1,000.
    _report(chain, 1, (node, 5_000, 20_000), (other, 10_000, 0))
    assert chain.view("NetworkIncentives", "pool") == 10_000 - 2_500 - 1_000
    assert chain.view("NetworkIncentives", "last_period") == 1
    with pytest.raises(ContractRevertError, match="period already reported"):
        _report(chain, 1, (node, 1, 1))
    # One refused report refuses the whole batch.
    with pytest.raises(ContractRevertError, match="uptime above"):
        _report(chain, 2, (other, 10_000, 0), (node, 10_001, 1))
    with pytest.raises(ContractRevertError, match="node is not active"):
        _report(chain, 2, (keccak(text="unknown"), 10_000, 0))
    assert chain.view("NetworkIncentives", "pool") == 6_500
    with pytest.raises(ChainPermissionError, match="caller does not own the node"):
        chain.transact("NetworkIncentives", "claim", node, signer=auditor)
    chain.transact("NetworkIncentives", "claim", node, signer=owner)
    assert chain.wallet_balance(owner.address, Asset.CREDIT) == 2_500
    _report(chain, 2, (node, 10_000, 0))
    with pytest.raises(ChainPermissionError, match="caller is not an auditor"):
        chain.transact("NetworkIncentives", "slash", node, "failed audit", signer=owner)
    chain.transact("NetworkIncentives", "slash", node, "failed audit", signer=auditor)
    assert chain.view("NetworkIncentives", "pool") == 6_500
    with pytest.raises(ContractRevertError, match="node is not active"):
        _report(chain, 3, (node, 10_000, 0))
    chain.transact("NetworkIncentives", "reinstate", node)
    _report(chain, 3, (node, 10_000, 0))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    funded=st.integers(0, 50_000),
    reports=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 100_000)), max_size=6),
)
def test_a_period_never_pays_more_than_the_pool(
    embedded_chain: EmbeddedChain, funded: int, reports: list[tuple[int, int]]
) -> None:
    chain = embedded_chain
    snapshot = chain.snapshot()
    try:
        owner = admitted_user(chain, ParticipantRole.NODE_OPERATOR)
        ids = [keccak(text=f"prop-{owner.address}-{i}") for i in range(len(reports))]
        for node in ids:
            chain.transact("NetworkIncentives", "register_node", node, owner.address)
        if funded:
            incentives = chain.deployment.contracts["NetworkIncentives"]
            chain.mint_credit(chain.operator_address, funded)
            chain.transact("CreditToken", "approve", incentives, funded)
            chain.transact("NetworkIncentives", "fund", funded)
        pool = int(chain.view("NetworkIncentives", "pool"))
        owed = sum(1_000 * up // 10_000 + wh * 100 // 1_000 for up, wh in reports)
        batch = [(node, up, wh) for node, (up, wh) in zip(ids, reports, strict=True)]
        if owed > pool:
            with pytest.raises(ContractRevertError, match="reward pool exhausted"):
                chain.transact("NetworkIncentives", "report_period", 1, batch)
            assert int(chain.view("NetworkIncentives", "pool")) == pool
            assert all(chain.view("NetworkIncentives", "nodes", n)[2] == 0 for n in ids)
            return
        chain.transact("NetworkIncentives", "report_period", 1, batch)
        pending = sum(int(chain.view("NetworkIncentives", "nodes", n)[2]) for n in ids)
        assert pending == owed
        assert int(chain.view("NetworkIncentives", "pool")) == pool - owed
    finally:
        chain.revert(snapshot)
