"""NetworkIncentives: bonds, rewards by score, slashing with an appeal window (docs/settlement.md,
"Node incentives"). The example tests run on the embedded chain and on anvil; the property
tests run embedded. Governed values are the deployment defaults (``DEFAULT_PARAMETERS``)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_utils import keccak
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.deploy import DEFAULT_PARAMETERS
from wattx.settlement.embedded import EmbeddedChain
from wattx.settlement.errors import (
    ChainPermissionError,
    IncentiveRuleError,
    PeriodAlreadyReportedError,
)
from wattx.settlement.port import Asset, ParticipantRole, Signer

from .helpers import admitted_user

P = {p.name: p.initial for p in DEFAULT_PARAMETERS}
MIN_BOND = P["incentive_min_bond"]
BUDGET = P["incentive_budget_per_period"]
CAP = P["incentive_cap_per_node"]
DELAY = P["incentive_unbonding_delay_s"]
WINDOW = P["incentive_appeal_window_s"]
SLASH_BPS = P["incentive_slash_bps"]
NI = "NetworkIncentives"


def score(uptime_bps: int, readings: int, commands: int) -> int:
    """The documented score (docs/settlement.md), from the default weights."""
    return (
        uptime_bps * P["incentive_uptime_weight"]
        + readings * P["incentive_reading_weight"]
        + commands * P["incentive_command_weight"]
    )


@dataclass
class BondedNode:
    node_id: bytes
    owner: Signer


def new_node(chain: ContractChain, tag: str, bond: int = MIN_BOND) -> BondedNode:
    owner = admitted_user(chain, ParticipantRole.NODE_OPERATOR)
    node_id = keccak(text=f"{tag}-{owner.address}")
    chain.transact(NI, "register_node", node_id, owner.address)
    if bond:
        give_bond(chain, node_id, owner, bond)
    return BondedNode(node_id, owner)


def give_bond(chain: ContractChain, node_id: bytes, owner: Signer, amount: int) -> None:
    chain.mint_credit(owner.address, amount)
    chain.transact("CreditToken", "approve", chain.deployment.contracts[NI], amount, signer=owner)
    chain.transact(NI, "bond", node_id, amount, signer=owner)


def fund_pool(chain: ContractChain, amount: int) -> None:
    chain.mint_credit(chain.operator_address, amount)
    chain.transact("CreditToken", "approve", chain.deployment.contracts[NI], amount)
    chain.transact(NI, "fund", amount)


def node(chain: ContractChain, node_id: bytes) -> tuple[str, int, int, int, int, int]:
    """``(owner, bond, unbonding, unbonding_ends, earned, claimed)``."""
    return tuple(chain.view(NI, "nodes", node_id))  # type: ignore[return-value]


def report(chain: ContractChain, period: int, rows: list[tuple[bytes, int, int, int]]) -> int:
    batch = sorted(rows, key=lambda r: r[0])
    result = chain.transact(NI, "report_period", period, batch)
    return sum(int(e.args["reward"]) for e in result.events if e.name == "ActivityReported")


def test_bond_unbond_and_withdraw_after_the_delay(chain: ContractChain) -> None:
    n = new_node(chain, "bond")
    stranger = admitted_user(chain, ParticipantRole.NODE_OPERATOR)
    assert node(chain, n.node_id)[1] == MIN_BOND
    with pytest.raises(ChainPermissionError, match="caller does not own the node"):
        chain.transact(NI, "unbond", n.node_id, 1, signer=stranger)
    with pytest.raises(IncentiveRuleError, match="amount above the bond"):
        chain.transact(NI, "unbond", n.node_id, MIN_BOND + 1, signer=n.owner)
    with pytest.raises(IncentiveRuleError, match="nothing unbonding"):
        chain.transact(NI, "withdraw_bond", n.node_id, signer=n.owner)
    chain.transact(NI, "unbond", n.node_id, 4_000_000, signer=n.owner)
    _, bond, unbonding, ends, _, _ = node(chain, n.node_id)
    assert (bond, unbonding) == (MIN_BOND - 4_000_000, 4_000_000)
    assert ends == chain.timestamp() + DELAY
    chain.advance_time(DELAY - 60)
    with pytest.raises(IncentiveRuleError, match="unbonding delay not elapsed"):
        chain.transact(NI, "withdraw_bond", n.node_id, signer=n.owner)
    chain.advance_time(60)
    chain.transact(NI, "withdraw_bond", n.node_id, signer=n.owner)
    assert chain.wallet_balance(n.owner.address, Asset.CREDIT) == 4_000_000
    assert node(chain, n.node_id)[2] == 0


def test_rewards_follow_the_score_are_capped_and_need_the_minimum_bond(
    chain: ContractChain,
) -> None:
    full, half, thin = new_node(chain, "full"), new_node(chain, "half"), new_node(chain, "thin", 1)
    others = [new_node(chain, f"other-{i}") for i in range(10)]
    fund_pool(chain, 3 * BUDGET)
    rows = [
        (full.node_id, 10_000, 2_880, 10),
        (half.node_id, 5_000, 1_440, 5),
        (thin.node_id, 10_000, 2_880, 10),
        *[(o.node_id, 10_000, 2_880, 10) for o in others],
    ]
    paid = report(chain, 1, rows)
    total = 11 * score(10_000, 2_880, 10) + score(5_000, 1_440, 5)
    expected_full = BUDGET * score(10_000, 2_880, 10) // total
    expected_half = BUDGET * score(5_000, 1_440, 5) // total
    assert expected_full < CAP
    assert chain.view(NI, "pending", full.node_id) == expected_full
    assert chain.view(NI, "pending", half.node_id) == expected_half
    assert chain.view(NI, "pending", thin.node_id) == 0  # below the minimum bond
    assert expected_full > expected_half > 0
    assert paid == 11 * expected_full + expected_half <= BUDGET
    assert chain.view(NI, "pool") == 3 * BUDGET - paid
    # With two nodes the budget would give each more than the cap: each gets the cap and
    # the rest stays in the pool.
    pool = chain.view(NI, "pool")
    assert report(chain, 2, rows[:2]) == 2 * CAP
    assert chain.view(NI, "pool") == pool - 2 * CAP
    # The owner claims; someone else cannot.
    with pytest.raises(ChainPermissionError, match="caller does not own the node"):
        chain.transact(NI, "claim", full.node_id, signer=half.owner)
    chain.transact(NI, "claim", full.node_id, signer=full.owner)
    assert chain.wallet_balance(full.owner.address, Asset.CREDIT) == expected_full + CAP
    with pytest.raises(IncentiveRuleError, match="nothing to claim"):
        chain.transact(NI, "claim", full.node_id, signer=full.owner)


def test_report_rules(chain: ContractChain) -> None:
    a, b = new_node(chain, "ra"), new_node(chain, "rb")
    fund_pool(chain, BUDGET)
    first, second = sorted([a.node_id, b.node_id])
    report(chain, 5, [(first, 10_000, 0, 0)])
    pool = chain.view(NI, "pool")
    with pytest.raises(PeriodAlreadyReportedError, match="period already reported"):
        chain.transact(NI, "report_period", 5, [(second, 10_000, 0, 0)])
    with pytest.raises(IncentiveRuleError, match="reports not sorted"):
        chain.transact(NI, "report_period", 6, [(second, 1, 0, 0), (first, 1, 0, 0)])
    with pytest.raises(IncentiveRuleError, match="reports not sorted"):
        chain.transact(NI, "report_period", 6, [(first, 1, 0, 0), (first, 1, 0, 0)])
    with pytest.raises(IncentiveRuleError, match="uptime above"):
        chain.transact(NI, "report_period", 6, [(first, 10_001, 0, 0)])
    with pytest.raises(IncentiveRuleError, match="unknown node"):
        chain.transact(NI, "report_period", 6, [(keccak(text="nobody"), 1, 0, 0)])
    with pytest.raises(ChainPermissionError, match="caller is not an operator"):
        chain.transact(NI, "report_period", 6, [(first, 1, 0, 0)], signer=a.owner)
    assert chain.view(NI, "pool") == pool
    assert chain.view(NI, "last_period") == 5


def test_an_empty_pool_pays_nothing(chain: ContractChain) -> None:
    n = new_node(chain, "empty")
    assert report(chain, 1, [(n.node_id, 10_000, 100, 1)]) == 0
    assert chain.view(NI, "pending", n.node_id) == 0


def test_slash_appeal_and_reversal(chain: ContractChain) -> None:
    n = new_node(chain, "slash", 2 * MIN_BOND)
    auditor = admitted_user(chain, ParticipantRole.AUDITOR)
    held = 2 * MIN_BOND * SLASH_BPS // 10_000
    with pytest.raises(ChainPermissionError, match="caller is not an operator or auditor"):
        chain.transact(NI, "slash", n.node_id, "tampered batch", signer=n.owner)
    chain.transact(NI, "slash", n.node_id, "tampered batch", signer=auditor)
    slash_id = chain.view(NI, "slash_count")
    assert node(chain, n.node_id)[1] == 2 * MIN_BOND - held
    assert tuple(chain.view(NI, "slashes", slash_id))[1:] == (held, chain.timestamp() + WINDOW, 1)
    with pytest.raises(IncentiveRuleError, match="slash not appealed"):
        chain.transact(NI, "reverse_slash", slash_id)
    with pytest.raises(IncentiveRuleError, match="appeal window still open"):
        chain.transact(NI, "finalize_slash", slash_id)
    with pytest.raises(ChainPermissionError, match="caller does not own the node"):
        chain.transact(NI, "appeal", slash_id, signer=auditor)
    chain.transact(NI, "appeal", slash_id, signer=n.owner)
    with pytest.raises(IncentiveRuleError, match="slash not open to appeal"):
        chain.transact(NI, "appeal", slash_id, signer=n.owner)
    chain.transact(NI, "reverse_slash", slash_id)
    assert node(chain, n.node_id)[1] == 2 * MIN_BOND
    assert chain.view(NI, "slashes", slash_id)[3] == 3
    with pytest.raises(IncentiveRuleError, match="slash already settled"):
        chain.transact(NI, "finalize_slash", slash_id)


def test_an_unappealed_slash_goes_to_the_pool_after_the_window(chain: ContractChain) -> None:
    n = new_node(chain, "final", MIN_BOND)
    chain.transact(NI, "unbond", n.node_id, MIN_BOND // 2, signer=n.owner)
    chain.transact(NI, "slash", n.node_id, "failed commands")
    slash_id = chain.view(NI, "slash_count")
    # The slash reaches what is unbonding too.
    held = (MIN_BOND // 2) * SLASH_BPS // 10_000 * 2
    assert chain.view(NI, "slashes", slash_id)[1] == held
    chain.advance_time(WINDOW)
    with pytest.raises(IncentiveRuleError, match="appeal window closed"):
        chain.transact(NI, "appeal", slash_id, signer=n.owner)
    pool = chain.view(NI, "pool")
    chain.transact(NI, "finalize_slash", slash_id)
    assert chain.view(NI, "pool") == pool + held
    with pytest.raises(IncentiveRuleError, match="unknown slash"):
        chain.transact(NI, "appeal", slash_id + 1, signer=n.owner)


# -- properties (embedded) -------------------------------------------------------------------

PROPERTY = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(
    funded=st.integers(0, 3 * BUDGET),
    rows=st.lists(
        st.tuples(
            st.integers(0, 3 * MIN_BOND),
            st.integers(0, 10_000),
            st.integers(0, 100_000),
            st.integers(0, 1_000),
        ),
        max_size=6,
    ),
)
def test_a_period_never_pays_more_than_the_pool_or_the_cap(
    embedded_chain: EmbeddedChain, funded: int, rows: list[tuple[int, int, int, int]]
) -> None:
    chain = embedded_chain
    snapshot = chain.snapshot()
    try:
        nodes = [new_node(chain, f"p{i}", bond) for i, (bond, *_) in enumerate(rows)]
        if funded:
            fund_pool(chain, funded)
        pool = int(chain.view(NI, "pool"))
        batch = [(n.node_id, up, rd, cmd) for n, (_, up, rd, cmd) in zip(nodes, rows, strict=True)]
        paid = report(chain, int(chain.view(NI, "last_period")) + 1, batch)
        rewards = [int(chain.view(NI, "pending", n.node_id)) for n in nodes]
        assert sum(rewards) == paid <= min(pool, BUDGET)
        assert all(r <= CAP for r in rewards)
        assert int(chain.view(NI, "pool")) == pool - paid
        for (bond, *_), r in zip(rows, rewards, strict=True):
            if bond < MIN_BOND:
                assert r == 0
    finally:
        chain.revert(snapshot)


_STEP = st.one_of(
    st.tuples(st.just("bond"), st.integers(1, 5 * MIN_BOND)),
    st.tuples(st.just("unbond"), st.integers(1, 5 * MIN_BOND)),
    st.tuples(st.just("slash"), st.just(0)),
    st.tuples(st.just("appeal"), st.just(0)),
    st.tuples(st.just("reverse"), st.just(0)),
    st.tuples(st.just("finalize"), st.just(0)),
    st.tuples(st.just("wait"), st.integers(1, 2 * WINDOW)),
)


@PROPERTY
@given(steps=st.lists(_STEP, min_size=1, max_size=12))
def test_a_slashed_bond_is_conserved_to_the_pool(
    embedded_chain: EmbeddedChain, steps: list[tuple[str, int]]
) -> None:
    """Whatever bonds, unbonds, slashes, appeals, reversals and waits happen, the contract's
    credit is exactly the pool plus every bond, unbonding and held slash, and a slash's amount
    ends either back in the bond or in the pool."""
    chain = embedded_chain
    snapshot = chain.snapshot()
    try:
        n = new_node(chain, "cons", 0)
        contract = chain.deployment.contracts[NI]
        pool0 = int(chain.view(NI, "pool"))
        held0 = int(chain.wallet_balance(contract, Asset.CREDIT)) - pool0
        reversed_total = finalized_total = 0
        for action, amount in steps:
            last = int(chain.view(NI, "slash_count"))
            try:
                if action == "bond":
                    give_bond(chain, n.node_id, n.owner, amount)
                elif action == "unbond":
                    chain.transact(NI, "unbond", n.node_id, amount, signer=n.owner)
                elif action == "slash":
                    chain.transact(NI, "slash", n.node_id, "tampered batch")
                elif action == "appeal":
                    chain.transact(NI, "appeal", last, signer=n.owner)
                elif action == "reverse":
                    chain.transact(NI, "reverse_slash", last)
                    reversed_total += int(chain.view(NI, "slashes", last)[1])
                elif action == "finalize":
                    chain.transact(NI, "finalize_slash", last)
                    finalized_total += int(chain.view(NI, "slashes", last)[1])
                else:
                    chain.advance_time(amount)
            except (IncentiveRuleError, ChainPermissionError):
                pass  # a refused step changes nothing; the invariant below still holds
            _, bond, unbonding, _, _, _ = node(chain, n.node_id)
            slashes = [
                tuple(chain.view(NI, "slashes", i))
                for i in range(1, int(chain.view(NI, "slash_count")) + 1)
            ]
            held = sum(int(s[1]) for s in slashes if s[0] == n.node_id and s[3] in (1, 2))
            pool = int(chain.view(NI, "pool"))
            balance = int(chain.wallet_balance(contract, Asset.CREDIT))
            assert balance - held0 == (pool - pool0) + bond + unbonding + held
            assert pool - pool0 == finalized_total
    finally:
        chain.revert(snapshot)


@PROPERTY
@given(delay_waited=st.integers(0, 2 * DELAY), second_unbond=st.booleans())
def test_the_unbonding_delay_is_respected(
    embedded_chain: EmbeddedChain, delay_waited: int, second_unbond: bool
) -> None:
    chain = embedded_chain
    snapshot = chain.snapshot()
    try:
        n = new_node(chain, "delay")
        chain.transact(NI, "unbond", n.node_id, 1_000, signer=n.owner)
        started = chain.timestamp()
        if second_unbond:
            chain.advance_time(delay_waited // 2)
            chain.transact(NI, "unbond", n.node_id, 1_000, signer=n.owner)
            started = chain.timestamp()  # a later unbond restarts the delay for all of it
            chain.advance_time(delay_waited - delay_waited // 2)
        else:
            chain.advance_time(delay_waited)
        ends = int(node(chain, n.node_id)[3])
        assert ends == started + DELAY
        if chain.timestamp() + 1 < ends:
            with pytest.raises(IncentiveRuleError, match="unbonding delay not elapsed"):
                chain.transact(NI, "withdraw_bond", n.node_id, signer=n.owner)
        elif chain.timestamp() >= ends:
            chain.transact(NI, "withdraw_bond", n.node_id, signer=n.owner)
            assert chain.wallet_balance(n.owner.address, Asset.CREDIT) == (
                2_000 if second_unbond else 1_000
            )
    finally:
        chain.revert(snapshot)
