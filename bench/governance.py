"""Governance and incentives benchmark: gas of propose, vote and execute, of one period's
activity reports for 100 and 1,000 nodes, and of claims, on the embedded chain (whose gas
is what a real chain charges: execution + intrinsic, refund capped at a fifth).

A period's reports go in one ``report_period`` transaction (up to 2,000 nodes); the figures
say whether 1,000 nodes' reports fit one 30 M-gas block. A node's ``earned`` counts from 1
(docs/settlement.md, "Node incentives"), so the first period costs what later ones do.
Also: gas of bond, unbond, withdraw_bond, slash, appeal, reverse_slash and finalize_slash.

    .venv/bin/python bench/governance.py            # table
    .venv/bin/python bench/governance.py --json     # JSON
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from eth_utils import keccak

from wattx.settlement.deploy import DeploySettings, parameter_key
from wattx.settlement.embedded import EmbeddedChain
from wattx.settlement.keys import new_signer
from wattx.settlement.port import MeterMint, ParticipantRole, Signer

BLOCK_GAS = 30_000_000
NODE_COUNTS = (100, 1_000)
VOTERS = 20
ZONE = b"bench".ljust(32, b"\0")


def _voters(chain: EmbeddedChain, count: int) -> list[Signer]:
    chain.add_zone(ZONE)
    voters = []
    for i in range(count):
        voter = new_signer()
        chain.admit_participant(voter.address, ParticipantRole.PROSUMER)
        meter = keccak(text=f"bench-meter-{i}")
        chain.register_meter(meter, voter.address, ZONE, 10_000)
        chain.mint_readings([MeterMint(meter, 1, voter.address, 10_000)])
        voters.append(voter)
    return voters


def governance_gas(chain: EmbeddedChain) -> dict[str, Any]:
    voters = _voters(chain, VOTERS)
    rules = chain.governance_rules()
    propose = chain.propose(voters[0], parameter_key("market_fee_bps"), 40)
    proposal_id = chain.proposal_count()
    votes = [chain.vote(v, proposal_id, True).gas_used for v in voters]
    chain.advance_time(rules.voting_period_s + rules.timelock_s)
    execute = chain.execute_proposal(proposal_id)
    return {
        "propose_gas": propose.gas_used,
        "vote_gas_first": votes[0],
        "vote_gas_mean": sum(votes) // len(votes),
        "execute_gas": execute.gas_used,
    }


def _bonded_nodes(chain: EmbeddedChain, nodes: int, tag: str) -> tuple[list[bytes], list[Signer]]:
    """``nodes`` nodes, sorted by id, each bonded with the minimum bond by its own owner."""
    incentives = chain.deployment.address_of("NetworkIncentives")
    min_bond = int(chain.view("Governance", "parameters", parameter_key("incentive_min_bond")))
    pairs = []
    for i in range(nodes):
        owner = new_signer()
        chain.admit_participant(owner.address, ParticipantRole.NODE_OPERATOR)
        node = keccak(text=f"{tag}-node-{i}")
        chain.transact("NetworkIncentives", "register_node", node, owner.address)
        chain.mint_credit(owner.address, min_bond)
        chain.transact("CreditToken", "approve", incentives, min_bond, signer=owner)
        chain.transact("NetworkIncentives", "bond", node, min_bond, signer=owner)
        pairs.append((node, owner))
    pairs.sort(key=lambda p: p[0])
    return [p[0] for p in pairs], [p[1] for p in pairs]


def incentives_gas(chain: EmbeddedChain, nodes: int, tag: str) -> dict[str, Any]:
    ids, owners = _bonded_nodes(chain, nodes, tag)
    incentives = chain.deployment.address_of("NetworkIncentives")
    fund = 10**15
    chain.mint_credit(chain.operator_address, fund)
    chain.transact("CreditToken", "approve", incentives, fund)
    chain.transact("NetworkIncentives", "fund", fund)
    periods = []
    started = time.perf_counter()
    last = int(chain.view("NetworkIncentives", "last_period"))
    for period in (last + 1, last + 2):
        reports = [
            (node, 5_000 + (i * 37) % 5_001, 2_880 + i % 100, i % 20) for i, node in enumerate(ids)
        ]
        result = chain.transact("NetworkIncentives", "report_period", period, reports)
        periods.append(result.gas_used)
    wall = time.perf_counter() - started
    claims = [
        chain.transact("NetworkIncentives", "claim", node, signer=owner).gas_used
        for node, owner in zip(ids[:50], owners[:50], strict=True)
    ]
    return {
        "nodes": nodes,
        "report_transactions": 1,
        "first_period_gas": periods[0],
        "later_period_gas": periods[1],
        "gas_per_report": periods[1] // nodes,
        "fits_one_30m_block": max(periods) <= BLOCK_GAS,
        "blocks_needed": -(-max(periods) // BLOCK_GAS),
        "claim_gas_mean": sum(claims) // len(claims),
        "wall_s_two_periods": round(wall, 2),
    }


def bond_and_slash_gas(chain: EmbeddedChain) -> dict[str, int]:
    """Gas of one node's bond, unbond, withdrawal, slash, appeal, reversal and finalisation."""
    (node,), (owner,) = _bonded_nodes(chain, 1, "lifecycle")
    incentives = chain.deployment.address_of("NetworkIncentives")
    chain.mint_credit(owner.address, 10_000_000)
    chain.transact("CreditToken", "approve", incentives, 10_000_000, signer=owner)
    gas: dict[str, int] = {}
    gas["bond"] = chain.transact(
        "NetworkIncentives", "bond", node, 10_000_000, signer=owner
    ).gas_used
    gas["unbond"] = chain.transact(
        "NetworkIncentives", "unbond", node, 1_000_000, signer=owner
    ).gas_used
    delay = int(
        chain.view("Governance", "parameters", parameter_key("incentive_unbonding_delay_s"))
    )
    window = int(chain.view("Governance", "parameters", parameter_key("incentive_appeal_window_s")))
    chain.advance_time(delay)
    gas["withdraw_bond"] = chain.transact(
        "NetworkIncentives", "withdraw_bond", node, signer=owner
    ).gas_used
    gas["slash"] = chain.transact("NetworkIncentives", "slash", node, "tampered batch").gas_used
    first = int(chain.view("NetworkIncentives", "slash_count"))
    gas["appeal"] = chain.transact("NetworkIncentives", "appeal", first, signer=owner).gas_used
    gas["reverse_slash"] = chain.transact("NetworkIncentives", "reverse_slash", first).gas_used
    chain.transact("NetworkIncentives", "slash", node, "failed commands")
    chain.advance_time(window)
    gas["finalize_slash"] = chain.transact(
        "NetworkIncentives", "finalize_slash", first + 1
    ).gas_used
    return gas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    settings = DeploySettings(voting_period_seconds=3_600, timelock_seconds=600, quorum_wh=1_000)
    chain = EmbeddedChain(settings=settings)
    result: dict[str, Any] = {
        "governance": governance_gas(chain),
        "incentives": [incentives_gas(chain, n, f"n{n}") for n in NODE_COUNTS],
        "bond_and_slash": bond_and_slash_gas(chain),
        "block_gas_limit": BLOCK_GAS,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    g = result["governance"]
    print("governance (gas)")
    print(f"  propose {g['propose_gas']:>10,}")
    print(f"  vote    {g['vote_gas_first']:>10,} first, {g['vote_gas_mean']:,} mean of {VOTERS}")
    print(f"  execute {g['execute_gas']:>10,}")
    print("incentives: one period's reports (one transaction), claims")
    print(
        f"  {'nodes':>6} {'1st period':>13} {'later':>13} {'per report':>11} {'30M?':>5} "
        f"{'blocks':>6} {'claim':>8} {'wall s':>7}"
    )
    for row in result["incentives"]:
        print(
            f"  {row['nodes']:>6} {row['first_period_gas']:>13,} {row['later_period_gas']:>13,} "
            f"{row['gas_per_report']:>11,} {'yes' if row['fits_one_30m_block'] else 'no':>5} "
            f"{row['blocks_needed']:>6} {row['claim_gas_mean']:>8,} {row['wall_s_two_periods']:>7}"
        )
    print("bonds and slashing (gas)")
    for name, used in result["bond_and_slash"].items():
        print(f"  {name:<15} {used:>10,}")


if __name__ == "__main__":
    main()
