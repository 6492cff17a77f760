# pragma version ~=0.4.3
# pragma evm-version cancun
"""
@title Governance
@notice Proposals to change named parameters (market fee, wheeling rates, loss
        factors, reference-price weights, incentive rates).

        Voting weight: a voter's lifetime verified generation in Wh, read from
        the MeterOracle when the vote is cast. It is earned only by metered
        export and cannot be transferred, so one Wh cannot vote twice on the
        same proposal through another address. One vote per address per
        proposal; a vote counts only before the voting deadline. A proposal
        passes when the votes cast reach the quorum and the votes for exceed
        the votes against; it can be executed once, after the deadline plus
        the timelock. Executed values are public.

        A parameter is addressed by keccak256 of its name; an operator defines
        it once with its initial value and the largest value a proposal may set
        (one at a time, or up to MAX_DEFINITIONS in one transaction, as the
        deployment defines its defaults).
"""

import roles
import IRegistry

interface IGenerationLedger:
    def generated_wh(owner: address) -> uint256: view

struct ParameterDefinition:
    name: String[64]
    initial_value: uint256
    largest_value: uint256

MAX_DEFINITIONS: constant(uint256) = 64

struct Proposal:
    proposer: address
    parameter: bytes32
    new_value: uint256
    voting_ends: uint256
    executable_at: uint256
    votes_for: uint256
    votes_against: uint256
    executed: bool


registry: public(immutable(IRegistry))
generation: public(immutable(IGenerationLedger))
voting_period: public(immutable(uint256))
timelock: public(immutable(uint256))
quorum_wh: public(immutable(uint256))

parameters: public(HashMap[bytes32, uint256])
parameter_defined: public(HashMap[bytes32, bool])
parameter_max: public(HashMap[bytes32, uint256])
proposals: public(HashMap[uint256, Proposal])
proposal_count: public(uint256)
has_voted: public(HashMap[uint256, HashMap[address, bool]])


event ParameterDefined:
    parameter: indexed(bytes32)
    name: String[64]
    value: uint256
    max_value: uint256


event ProposalCreated:
    proposal_id: indexed(uint256)
    proposer: indexed(address)
    parameter: indexed(bytes32)
    new_value: uint256
    voting_ends: uint256
    executable_at: uint256


event VoteCast:
    proposal_id: indexed(uint256)
    voter: indexed(address)
    support: bool
    weight: uint256


event ProposalExecuted:
    proposal_id: indexed(uint256)
    parameter: indexed(bytes32)
    new_value: uint256


@deploy
def __init__(
    registry_address: address,
    generation_address: address,
    voting_period_seconds: uint256,
    timelock_seconds: uint256,
    quorum: uint256,
):
    assert voting_period_seconds > 0, "voting period is zero"
    assert quorum > 0, "quorum is zero"
    registry = IRegistry(registry_address)
    generation = IGenerationLedger(generation_address)
    voting_period = voting_period_seconds
    timelock = timelock_seconds
    quorum_wh = quorum


@external
def define_parameter(name: String[64], initial_value: uint256, largest_value: uint256):
    assert staticcall registry.has_role(msg.sender, roles.ROLE_OPERATOR), "caller is not an operator"
    self._define(name, initial_value, largest_value)


@external
def define_parameters(definitions: DynArray[ParameterDefinition, MAX_DEFINITIONS]):
    """@notice All or none: one definition refused refuses them all."""
    assert staticcall registry.has_role(msg.sender, roles.ROLE_OPERATOR), "caller is not an operator"
    for definition: ParameterDefinition in definitions:
        self._define(definition.name, definition.initial_value, definition.largest_value)


@internal
def _define(name: String[64], initial_value: uint256, largest_value: uint256):
    key: bytes32 = keccak256(name)
    assert not self.parameter_defined[key], "parameter already defined"
    assert initial_value <= largest_value, "value above the parameter's maximum"
    self.parameter_defined[key] = True
    self.parameters[key] = initial_value
    self.parameter_max[key] = largest_value
    log ParameterDefined(parameter=key, name=name, value=initial_value, max_value=largest_value)


@external
def propose(parameter: bytes32, new_value: uint256) -> uint256:
    assert staticcall registry.is_active(msg.sender), "not an active participant"
    assert self.parameter_defined[parameter], "unknown parameter"
    assert new_value <= self.parameter_max[parameter], "value above the parameter's maximum"
    proposal_id: uint256 = self.proposal_count + 1
    self.proposal_count = proposal_id
    voting_ends: uint256 = block.timestamp + voting_period
    self.proposals[proposal_id] = Proposal(
        proposer=msg.sender,
        parameter=parameter,
        new_value=new_value,
        voting_ends=voting_ends,
        executable_at=voting_ends + timelock,
        votes_for=0,
        votes_against=0,
        executed=False,
    )
    log ProposalCreated(
        proposal_id=proposal_id,
        proposer=msg.sender,
        parameter=parameter,
        new_value=new_value,
        voting_ends=voting_ends,
        executable_at=voting_ends + timelock,
    )
    return proposal_id


@external
def vote(proposal_id: uint256, support: bool):
    p: Proposal = self.proposals[proposal_id]
    assert p.proposer != empty(address), "unknown proposal"
    assert block.timestamp < p.voting_ends, "voting has ended"
    assert not self.has_voted[proposal_id][msg.sender], "already voted"
    weight: uint256 = staticcall generation.generated_wh(msg.sender)
    assert weight > 0, "no voting weight"
    self.has_voted[proposal_id][msg.sender] = True
    if support:
        self.proposals[proposal_id].votes_for = p.votes_for + weight
    else:
        self.proposals[proposal_id].votes_against = p.votes_against + weight
    log VoteCast(proposal_id=proposal_id, voter=msg.sender, support=support, weight=weight)


@external
def execute(proposal_id: uint256):
    p: Proposal = self.proposals[proposal_id]
    assert p.proposer != empty(address), "unknown proposal"
    assert not p.executed, "proposal already executed"
    assert block.timestamp >= p.voting_ends, "voting still open"
    assert p.votes_for + p.votes_against >= quorum_wh, "quorum not reached"
    assert p.votes_for > p.votes_against, "proposal rejected"
    assert block.timestamp >= p.executable_at, "timelock not elapsed"
    self.proposals[proposal_id].executed = True
    self.parameters[p.parameter] = p.new_value
    log ProposalExecuted(proposal_id=proposal_id, parameter=p.parameter, new_value=p.new_value)
