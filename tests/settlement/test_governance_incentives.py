"""Governance, on the embedded chain and on anvil (incentives: test_incentives_contract.py).

Test deployments use a 3,600 s voting period, a 600 s timelock and a quorum of
1,000 Wh of verified generation.
"""

from __future__ import annotations

import pytest
from eth_utils import keccak

from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.deploy import DEFAULT_PARAMETERS, parameter_key
from wattx.settlement.errors import ContractRevertError, GovernanceRuleError
from wattx.settlement.port import MeterMint

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


def test_parameters_are_defined_together_all_or_none(chain: ContractChain) -> None:
    first, second = parameter_key("test_first_per_kwh"), parameter_key("test_second_ppm")
    chain.transact(
        "Governance",
        "define_parameters",
        [("test_first_per_kwh", 5, 50), ("test_second_ppm", 0, 10)],
    )
    assert chain.view("Governance", "parameters", first) == 5
    assert chain.view("Governance", "parameter_max", first) == 50
    assert chain.view("Governance", "parameter_defined", second)
    assert chain.view("Governance", "parameter_max", second) == 10

    third = parameter_key("test_third")
    for refused, reason in (
        ([("test_third", 1, 2), ("test_first_per_kwh", 1, 2)], "parameter already defined"),
        ([("test_third", 1, 2), ("test_third", 1, 2)], "parameter already defined"),
        ([("test_third", 1, 2), ("test_fourth", 3, 2)], "above the parameter's maximum"),
    ):
        with pytest.raises(ContractRevertError, match=reason):
            chain.transact("Governance", "define_parameters", refused)
        assert not chain.view("Governance", "parameter_defined", third), "half a batch stayed"
    outsider = admitted_user(chain)
    with pytest.raises(ContractRevertError, match="caller is not an operator"):
        chain.transact("Governance", "define_parameters", [("test_third", 1, 2)], signer=outsider)


def test_the_deployment_defines_every_default_parameter(chain: ContractChain) -> None:
    for p in DEFAULT_PARAMETERS:
        assert chain.view("Governance", "parameter_max", p.key) == p.maximum
        # Tests deploy with their own mint threshold; every other default is as listed.
        if p.name != "mint_threshold_wh":
            assert chain.view("Governance", "parameters", p.key) == p.initial
