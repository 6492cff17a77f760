"""Governance errors: one class per rule of the Governance contract, each with a stable code."""

from __future__ import annotations

from wattx.domain.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError


class UnknownParameterError(ValidationError):
    code = "unknown_parameter"
    title = "No governed parameter has this name"


class ParameterOutOfLimitsError(ValidationError):
    code = "parameter_out_of_limits"
    title = "The value is outside the parameter's limits"


class ProposalNotFoundError(NotFoundError):
    code = "proposal_not_found"
    title = "No such proposal"


class NoVotingWeightError(PermissionDeniedError):
    code = "no_voting_weight"
    title = "The voter has no verified generation to vote with"


class AlreadyVotedError(ConflictError):
    code = "already_voted"
    title = "This address voted on the proposal before"


class VotingClosedError(ConflictError):
    code = "voting_closed"
    title = "The proposal's voting deadline has passed"


class VotingStillOpenError(ConflictError):
    code = "voting_still_open"
    title = "The proposal is still open for votes"


class QuorumNotReachedError(ConflictError):
    code = "quorum_not_reached"
    title = "The votes cast did not reach the quorum"


class ProposalRejectedError(ConflictError):
    code = "proposal_rejected"
    title = "The votes against outweigh the votes for"


class TimelockNotElapsedError(ConflictError):
    code = "timelock_not_elapsed"
    title = "The proposal passed but its timelock has not elapsed"


class ProposalAlreadyExecutedError(ConflictError):
    code = "proposal_already_executed"
    title = "The proposal was executed before"
