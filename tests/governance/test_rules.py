"""The pure rules: a proposal's status, the checks before a transaction, parameter sets
and the fee schedule."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wattx.domain import EpochSchedule, Zone
from wattx.governance import (
    AlreadyVotedError,
    GovernedValue,
    NoVotingWeightError,
    ParameterOutOfLimitsError,
    ParameterSet,
    Proposal,
    ProposalAlreadyExecutedError,
    ProposalRejectedError,
    ProposalStatus,
    QuorumNotReachedError,
    TimelockNotElapsedError,
    UnknownParameterError,
    VotingClosedError,
    VotingStillOpenError,
    check_executable,
    check_proposal,
    check_vote,
    set_for_epoch,
)
from wattx.market.config import MarketConfig, fee_at

QUORUM = 1_000


def _proposal(votes_for: int = 0, votes_against: int = 0, *, executed: bool = False) -> Proposal:
    return Proposal(1, "0xabc", "market_fee_bps", 40, 100, 160, votes_for, votes_against, executed)


def test_a_proposal_moves_through_its_statuses() -> None:
    assert _proposal(2_000).status(99, QUORUM) is ProposalStatus.VOTING
    assert _proposal(999).status(100, QUORUM) is ProposalStatus.QUORUM_NOT_REACHED
    assert _proposal(500, 500).status(100, QUORUM) is ProposalStatus.REJECTED
    assert _proposal(600, 500).status(159, QUORUM) is ProposalStatus.TIMELOCKED
    assert _proposal(600, 500).status(160, QUORUM) is ProposalStatus.EXECUTABLE
    assert _proposal(600, 500, executed=True).status(1, QUORUM) is ProposalStatus.EXECUTED


def test_checks_follow_the_contracts_order() -> None:
    fee = GovernedValue("market_fee_bps", 25, 1_000)
    check_proposal(fee, "market_fee_bps", 1_000)
    with pytest.raises(UnknownParameterError):
        check_proposal(None, "nope", 1)
    with pytest.raises(ParameterOutOfLimitsError):
        check_proposal(fee, "market_fee_bps", 1_001)
    with pytest.raises(VotingClosedError):
        check_vote(_proposal(), 100, already_voted=True, weight_wh=0)
    with pytest.raises(AlreadyVotedError):
        check_vote(_proposal(), 99, already_voted=True, weight_wh=0)
    with pytest.raises(NoVotingWeightError):
        check_vote(_proposal(), 99, already_voted=False, weight_wh=0)
    check_vote(_proposal(), 99, already_voted=False, weight_wh=1)
    with pytest.raises(ProposalAlreadyExecutedError):
        check_executable(_proposal(executed=True), 99, QUORUM)
    with pytest.raises(VotingStillOpenError):
        check_executable(_proposal(2_000), 99, QUORUM)
    with pytest.raises(QuorumNotReachedError):
        check_executable(_proposal(999), 200, QUORUM)
    with pytest.raises(ProposalRejectedError):
        check_executable(_proposal(500, 500), 200, QUORUM)
    with pytest.raises(TimelockNotElapsedError):
        check_executable(_proposal(1_000), 159, QUORUM)
    check_executable(_proposal(1_000), 160, QUORUM)


@given(st.dictionaries(st.from_regex(r"[a-z_]{1,20}", fullmatch=True), st.integers(0, 10**12)))
def test_a_sets_hash_covers_its_sorted_canonical_json(values: dict[str, int]) -> None:
    parameter_set = ParameterSet(values)
    reordered = ParameterSet(dict(reversed(list(values.items()))))
    assert parameter_set.hash == reordered.hash
    assert parameter_set.hash == hashlib.sha256(parameter_set.canonical().encode()).hexdigest()
    assert " " not in parameter_set.canonical()
    if values:
        name = next(iter(values))
        assert parameter_set.changed(name, values[name] + 1).hash != parameter_set.hash


def test_an_epoch_runs_under_the_latest_set_started_at_or_before_it() -> None:
    assert set_for_epoch([0, 10, 20], 9) == 0
    assert set_for_epoch([0, 10, 20], 10) == 10
    assert set_for_epoch([0, 10, 20], 25) == 20
    assert set_for_epoch([5], 4) is None
    assert fee_at(25, {10: 40, 20: 0}, 9) == 25
    assert fee_at(25, {10: 40, 20: 0}, 19) == 40
    assert fee_at(25, {10: 40, 20: 0}, 20) == 0
    config = MarketConfig(
        zones={"z": Zone(id="z", name="z")}, schedule=EpochSchedule(), fee_changes={3: 50}
    )
    assert (config.fee_for(2), config.fee_for(3)) == (25, 50)
