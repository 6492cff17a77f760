"""Community governance: the rules of a proposal's life (pure, no I/O).

The Governance contract is the authority; this package restates its rules so
the service can refuse a doomed call with a stable code before paying for a
transaction, and can tell a reader where a proposal stands.
"""

from wattx.governance.errors import (
    AlreadyVotedError,
    NoVotingWeightError,
    ParameterOutOfLimitsError,
    ProposalAlreadyExecutedError,
    ProposalNotFoundError,
    ProposalRejectedError,
    QuorumNotReachedError,
    TimelockNotElapsedError,
    UnknownParameterError,
    VotingClosedError,
    VotingStillOpenError,
)
from wattx.governance.parameters import (
    LINK_CAPACITY_MAX,
    MARKET_FEE,
    MINT_THRESHOLD,
    PRICE_CEILING_MARGIN,
    PRICE_FLOOR_MARGIN,
    ParameterSet,
    link_of,
    link_parameter,
    set_for_epoch,
    unit_of,
)
from wattx.governance.proposals import (
    GovernedValue,
    Proposal,
    ProposalStatus,
    check_executable,
    check_proposal,
    check_vote,
)

__all__ = [
    "LINK_CAPACITY_MAX",
    "MARKET_FEE",
    "MINT_THRESHOLD",
    "PRICE_CEILING_MARGIN",
    "PRICE_FLOOR_MARGIN",
    "AlreadyVotedError",
    "GovernedValue",
    "NoVotingWeightError",
    "ParameterOutOfLimitsError",
    "ParameterSet",
    "Proposal",
    "ProposalAlreadyExecutedError",
    "ProposalNotFoundError",
    "ProposalRejectedError",
    "ProposalStatus",
    "QuorumNotReachedError",
    "TimelockNotElapsedError",
    "UnknownParameterError",
    "VotingClosedError",
    "VotingStillOpenError",
    "check_executable",
    "check_proposal",
    "check_vote",
    "link_of",
    "link_parameter",
    "set_for_epoch",
    "unit_of",
]
