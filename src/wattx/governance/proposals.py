"""A proposal as the Governance contract stores it, its status, and the contract's rules.

Times are the chain's block timestamps (unix seconds): the contract decides by
them, so the checks here take the chain's time, never the service's clock.
Weights and quorum are Wh of verified generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from wattx.governance.errors import (
    AlreadyVotedError,
    NoVotingWeightError,
    ParameterOutOfLimitsError,
    ProposalAlreadyExecutedError,
    ProposalRejectedError,
    QuorumNotReachedError,
    TimelockNotElapsedError,
    UnknownParameterError,
    VotingClosedError,
    VotingStillOpenError,
)


@dataclass(frozen=True, slots=True)
class GovernedValue:
    """A governed parameter: its name, current value and the most a proposal may set."""

    name: str
    value: int
    maximum: int


class ProposalStatus(StrEnum):
    VOTING = "voting"
    """Before the voting deadline."""
    QUORUM_NOT_REACHED = "quorum_not_reached"
    REJECTED = "rejected"
    """Voting ended with votes against at least the votes for."""
    TIMELOCKED = "timelocked"
    """Passed; executable once the timelock has elapsed."""
    EXECUTABLE = "executable"
    EXECUTED = "executed"


@dataclass(frozen=True, slots=True)
class Proposal:
    proposal_id: int
    proposer: str
    parameter: str
    """The parameter's name (the contract holds its keccak256)."""
    new_value: int
    voting_ends: int
    executable_at: int
    votes_for: int
    votes_against: int
    executed: bool

    @property
    def votes_cast(self) -> int:
        return self.votes_for + self.votes_against

    def status(self, now: int, quorum_wh: int) -> ProposalStatus:
        """Where the proposal stands at chain time ``now``."""
        if self.executed:
            return ProposalStatus.EXECUTED
        if now < self.voting_ends:
            return ProposalStatus.VOTING
        if self.votes_cast < quorum_wh:
            return ProposalStatus.QUORUM_NOT_REACHED
        if self.votes_for <= self.votes_against:
            return ProposalStatus.REJECTED
        if now < self.executable_at:
            return ProposalStatus.TIMELOCKED
        return ProposalStatus.EXECUTABLE


def check_proposal(parameter: GovernedValue | None, name: str, value: int) -> None:
    """Raise unless ``value`` may be proposed for the parameter called ``name``."""
    if parameter is None:
        raise UnknownParameterError(f"no governed parameter is called {name!r}", parameter=name)
    if not 0 <= value <= parameter.maximum:
        raise ParameterOutOfLimitsError(
            f"{name} takes values from 0 to {parameter.maximum}",
            parameter=name,
            value=value,
            minimum=0,
            maximum=parameter.maximum,
        )


def check_vote(proposal: Proposal, now: int, *, already_voted: bool, weight_wh: int) -> None:
    """Raise unless a voter with ``weight_wh`` may vote on ``proposal`` at chain time ``now``."""
    if now >= proposal.voting_ends:
        raise VotingClosedError(
            "voting on this proposal has ended",
            proposal_id=proposal.proposal_id,
            voting_ends=proposal.voting_ends,
        )
    if already_voted:
        raise AlreadyVotedError(
            "you voted on this proposal already", proposal_id=proposal.proposal_id
        )
    if weight_wh <= 0:
        raise NoVotingWeightError(
            "only verified generation carries a vote, and you have none",
            proposal_id=proposal.proposal_id,
        )


def check_executable(proposal: Proposal, now: int, quorum_wh: int) -> None:
    """Raise unless ``proposal`` may be executed at chain time ``now`` (the contract's order)."""
    context = {"proposal_id": proposal.proposal_id}
    if proposal.executed:
        raise ProposalAlreadyExecutedError("the proposal was executed already", **context)
    if now < proposal.voting_ends:
        raise VotingStillOpenError(
            "voting is still open", voting_ends=proposal.voting_ends, **context
        )
    if proposal.votes_cast < quorum_wh:
        raise QuorumNotReachedError(
            f"{proposal.votes_cast} Wh voted, the quorum is {quorum_wh} Wh",
            votes_cast=proposal.votes_cast,
            quorum_wh=quorum_wh,
            **context,
        )
    if proposal.votes_for <= proposal.votes_against:
        raise ProposalRejectedError(
            "the votes against are not outweighed by the votes for",
            votes_for=proposal.votes_for,
            votes_against=proposal.votes_against,
            **context,
        )
    if now < proposal.executable_at:
        raise TimelockNotElapsedError(
            "the proposal passed; its timelock has not elapsed",
            executable_at=proposal.executable_at,
            **context,
        )
