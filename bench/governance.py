"""Governance and incentives benchmark: gas of propose, vote and execute, of one period's
activity reports for 100 and 1,000 nodes, and of claims, on the embedded chain (whose gas
is what a real chain charges: execution + intrinsic, refund capped at a fifth).

A period's reports go in one ``report_period`` transaction (up to 2,000 nodes); the figures
say whether 1,000 nodes' reports fit one 30 M-gas block. The first period writes each
node's pending reward from zero (20,000 gas a slot); later ones add to it.

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


def incentives_gas(chain: EmbeddedChain, nodes: int, tag: str) -> dict[str, Any]:
    owners = []
    ids = []
    for i in range(nodes):
        owner = new_signer()
        chain.admit_participant(owner.address, ParticipantRole.NODE_OPERATOR)
        node = keccak(text=f"{tag}-node-{i}")
        chain.transact("NetworkIncentives", "register_node", node, owner.address)
        owners.append(owner)
        ids.append(node)
    incentives = chain.deployment.address_of("NetworkIncentives")
    fund = 10**15
    chain.mint_credit(chain.operator_address, fund)
    chain.transact("CreditToken", "approve", incentives, fund)
    chain.transact("NetworkIncentives", "fund", fund)
    periods = []
    started = time.perf_counter()
    last = int(chain.view("NetworkIncentives", "last_period"))
    for period in (last + 1, last + 2):
        reports = [(node, 5_000 + (i * 37) % 5_001, 1_000 + i) for i, node in enumerate(ids)]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    settings = DeploySettings(voting_period_seconds=3_600, timelock_seconds=600, quorum_wh=1_000)
    chain = EmbeddedChain(settings=settings)
    result: dict[str, Any] = {
        "governance": governance_gas(chain),
        "incentives": [incentives_gas(chain, n, f"n{n}") for n in NODE_COUNTS],
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


if __name__ == "__main__":
    main()
