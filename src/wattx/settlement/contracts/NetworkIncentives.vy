# pragma version ~=0.4.3
# pragma evm-version cancun
"""
@title NetworkIncentives
@notice Bonds, rewards and slashing for edge nodes, in CreditToken.

        An operator registers a node and the address that owns it. The owner
        bonds credit; `unbond` starts a withdrawal that can be taken after the
        unbonding delay (slashing still reaches it until then).

        Each period an operator reports every node's activity in one batch,
        sorted by node id. A node's score is

            uptime_bps * w_uptime + readings * w_reading + commands * w_command

        or 0 when its bond is below the minimum bond. The period's budget is
        min(budget per period, pool); each node earns
        min(cap per node, budget * score // total score). The sum never exceeds
        the budget, so a period never pays more than the pool holds.

        An operator or auditor slashes a node for proven misbehaviour: a share
        of its bond (and of what it is unbonding) is held for the appeal
        window. The owner may appeal inside the window and an operator may
        then reverse the slash (the amount returns to the bond); otherwise,
        after the window, anyone moves it to the pool.

        Every value named above is a Governance parameter (keys below).
"""

from ethereum.ercs import IERC20

import roles
import IRegistry

interface IParameters:
    def parameters(key: bytes32) -> uint256: view

struct Node:
    owner: address
    bond: uint256
    unbonding: uint256
    unbonding_ends: uint256
    earned: uint256
    claimed: uint256


struct Report:
    node_id: bytes32
    uptime_bps: uint16
    readings: uint32
    commands: uint32


struct Slash:
    node_id: bytes32
    amount: uint256
    appeal_ends: uint256
    status: uint8


MAX_REPORTS: constant(uint256) = 2_000

SLASH_HELD: constant(uint8) = 1
SLASH_APPEALED: constant(uint8) = 2
SLASH_REVERSED: constant(uint8) = 3
SLASH_FINAL: constant(uint8) = 4

BUDGET_KEY: constant(bytes32) = keccak256("incentive_budget_per_period")
CAP_KEY: constant(bytes32) = keccak256("incentive_cap_per_node")
MIN_BOND_KEY: constant(bytes32) = keccak256("incentive_min_bond")
UPTIME_KEY: constant(bytes32) = keccak256("incentive_uptime_weight")
READING_KEY: constant(bytes32) = keccak256("incentive_reading_weight")
COMMAND_KEY: constant(bytes32) = keccak256("incentive_command_weight")
SLASH_KEY: constant(bytes32) = keccak256("incentive_slash_bps")
UNBONDING_KEY: constant(bytes32) = keccak256("incentive_unbonding_delay_s")
APPEAL_KEY: constant(bytes32) = keccak256("incentive_appeal_window_s")

registry: public(immutable(IRegistry))
governance: public(immutable(IParameters))
reward_token: public(immutable(IERC20))

nodes: public(HashMap[bytes32, Node])
slashes: public(HashMap[uint256, Slash])
slash_count: public(uint256)
pool: public(uint256)
last_period: public(uint64)


event NodeRegistered:
    node_id: indexed(bytes32)
    owner: indexed(address)


event PoolFunded:
    funder: indexed(address)
    amount: uint256


event Bonded:
    node_id: indexed(bytes32)
    amount: uint256
    bond: uint256


event UnbondingStarted:
    node_id: indexed(bytes32)
    amount: uint256
    unbonding: uint256
    unbonding_ends: uint256


event BondWithdrawn:
    node_id: indexed(bytes32)
    amount: uint256


event ActivityReported:
    node_id: indexed(bytes32)
    period: uint64
    uptime_bps: uint16
    readings: uint32
    commands: uint32
    reward: uint256


event PeriodReported:
    period: indexed(uint64)
    nodes: uint256
    total_score: uint256
    paid: uint256


event RewardClaimed:
    node_id: indexed(bytes32)
    owner: indexed(address)
    amount: uint256


event NodeSlashed:
    slash_id: indexed(uint256)
    node_id: indexed(bytes32)
    amount: uint256
    appeal_ends: uint256
    reason: String[64]


event SlashAppealed:
    slash_id: indexed(uint256)
    node_id: indexed(bytes32)


event SlashReversed:
    slash_id: indexed(uint256)
    node_id: indexed(bytes32)
    amount: uint256


event SlashFinalized:
    slash_id: indexed(uint256)
    node_id: indexed(bytes32)
    amount: uint256


@deploy
def __init__(registry_address: address, governance_address: address, reward_token_address: address):
    registry = IRegistry(registry_address)
    governance = IParameters(governance_address)
    reward_token = IERC20(reward_token_address)


@internal
@view
def _param(key: bytes32) -> uint256:
    return staticcall governance.parameters(key)


@internal
def _only_operator():
    assert staticcall registry.has_role(msg.sender, roles.ROLE_OPERATOR), "caller is not an operator"


@internal
@view
def _only_owner(node_id: bytes32):
    assert self.nodes[node_id].owner == msg.sender, "caller does not own the node"


@internal
@view
def _score(r: Report, min_bond: uint256, w_up: uint256, w_read: uint256, w_cmd: uint256) -> uint256:
    if self.nodes[r.node_id].bond < min_bond:
        return 0
    return convert(r.uptime_bps, uint256) * w_up + convert(r.readings, uint256) * w_read + convert(r.commands, uint256) * w_cmd


@external
def register_node(node_id: bytes32, owner: address):
    self._only_operator()
    assert node_id != empty(bytes32), "node id is empty"
    assert self.nodes[node_id].owner == empty(address), "node already registered"
    assert staticcall registry.is_active(owner), "owner is not an active participant"
    # earned and claimed count from 1, so a node's first reward rewrites a non-zero slot
    # (2,900 gas) instead of creating one (20,000): 1,000 nodes' first period fits a block.
    self.nodes[node_id] = Node(owner=owner, bond=0, unbonding=0, unbonding_ends=0, earned=1, claimed=1)
    log NodeRegistered(node_id=node_id, owner=owner)


@external
def fund(amount: uint256):
    assert amount > 0, "nothing to fund"
    assert extcall reward_token.transferFrom(msg.sender, self, amount), "token transfer failed"
    self.pool += amount
    log PoolFunded(funder=msg.sender, amount=amount)


@external
def bond(node_id: bytes32, amount: uint256):
    self._only_owner(node_id)
    assert amount > 0, "nothing to bond"
    assert extcall reward_token.transferFrom(msg.sender, self, amount), "token transfer failed"
    self.nodes[node_id].bond += amount
    log Bonded(node_id=node_id, amount=amount, bond=self.nodes[node_id].bond)


@external
def unbond(node_id: bytes32, amount: uint256):
    """
    @notice Move `amount` of the bond to unbonding; all that is unbonding becomes
            withdrawable one unbonding delay after the latest `unbond`.
    """
    self._only_owner(node_id)
    assert amount > 0, "nothing to unbond"
    assert amount <= self.nodes[node_id].bond, "amount above the bond"
    ends: uint256 = block.timestamp + self._param(UNBONDING_KEY)
    self.nodes[node_id].bond -= amount
    self.nodes[node_id].unbonding += amount
    self.nodes[node_id].unbonding_ends = ends
    log UnbondingStarted(node_id=node_id, amount=amount, unbonding=self.nodes[node_id].unbonding, unbonding_ends=ends)


@external
def withdraw_bond(node_id: bytes32) -> uint256:
    self._only_owner(node_id)
    amount: uint256 = self.nodes[node_id].unbonding
    assert amount > 0, "nothing unbonding"
    assert block.timestamp >= self.nodes[node_id].unbonding_ends, "unbonding delay not elapsed"
    self.nodes[node_id].unbonding = 0
    assert extcall reward_token.transfer(msg.sender, amount), "token transfer failed"
    log BondWithdrawn(node_id=node_id, amount=amount)
    return amount


@external
def report_period(period: uint64, reports: DynArray[Report, MAX_REPORTS]) -> uint256:
    """
    @notice Every node's activity in `period`, in one transaction, sorted by node id;
            returns the rewards paid out of the pool. Refused whole if one report is refused.
    """
    self._only_operator()
    assert period > self.last_period, "period already reported"
    min_bond: uint256 = self._param(MIN_BOND_KEY)
    w_up: uint256 = self._param(UPTIME_KEY)
    w_read: uint256 = self._param(READING_KEY)
    w_cmd: uint256 = self._param(COMMAND_KEY)
    total: uint256 = 0
    previous: uint256 = 0
    for r: Report in reports:
        assert convert(r.node_id, uint256) > previous, "reports not sorted by node id"
        previous = convert(r.node_id, uint256)
        assert self.nodes[r.node_id].owner != empty(address), "unknown node"
        assert r.uptime_bps <= 10_000, "uptime above 100 percent"
        total += self._score(r, min_bond, w_up, w_read, w_cmd)
    budget: uint256 = min(self._param(BUDGET_KEY), self.pool)
    cap: uint256 = self._param(CAP_KEY)
    paid: uint256 = 0
    for r: Report in reports:
        reward: uint256 = 0
        if total > 0:
            reward = min(cap, budget * self._score(r, min_bond, w_up, w_read, w_cmd) // total)
        if reward > 0:
            self.nodes[r.node_id].earned += reward
            paid += reward
        log ActivityReported(node_id=r.node_id, period=period, uptime_bps=r.uptime_bps, readings=r.readings, commands=r.commands, reward=reward)
    self.pool -= paid
    self.last_period = period
    log PeriodReported(period=period, nodes=len(reports), total_score=total, paid=paid)
    return paid


@external
@view
def pending(node_id: bytes32) -> uint256:
    return self.nodes[node_id].earned - self.nodes[node_id].claimed


@external
def claim(node_id: bytes32) -> uint256:
    self._only_owner(node_id)
    amount: uint256 = self.nodes[node_id].earned - self.nodes[node_id].claimed
    assert amount > 0, "nothing to claim"
    self.nodes[node_id].claimed = self.nodes[node_id].earned
    assert extcall reward_token.transfer(msg.sender, amount), "token transfer failed"
    log RewardClaimed(node_id=node_id, owner=msg.sender, amount=amount)
    return amount


@external
def slash(node_id: bytes32, reason: String[64]) -> uint256:
    """
    @notice Hold `incentive_slash_bps` of the node's bond and of what it is unbonding
            for the appeal window; returns the slash id.
    """
    assert staticcall registry.has_role(msg.sender, roles.ROLE_OPERATOR) or staticcall registry.has_role(msg.sender, roles.ROLE_AUDITOR), "caller is not an operator or auditor"
    node: Node = self.nodes[node_id]
    assert node.owner != empty(address), "unknown node"
    share: uint256 = self._param(SLASH_KEY)
    from_bond: uint256 = node.bond * share // 10_000
    from_unbonding: uint256 = node.unbonding * share // 10_000
    assert from_bond + from_unbonding > 0, "nothing to slash"
    self.nodes[node_id].bond = node.bond - from_bond
    self.nodes[node_id].unbonding = node.unbonding - from_unbonding
    slash_id: uint256 = self.slash_count + 1
    self.slash_count = slash_id
    ends: uint256 = block.timestamp + self._param(APPEAL_KEY)
    self.slashes[slash_id] = Slash(node_id=node_id, amount=from_bond + from_unbonding, appeal_ends=ends, status=SLASH_HELD)
    log NodeSlashed(slash_id=slash_id, node_id=node_id, amount=from_bond + from_unbonding, appeal_ends=ends, reason=reason)
    return slash_id


@external
def appeal(slash_id: uint256):
    s: Slash = self.slashes[slash_id]
    assert s.status != 0, "unknown slash"
    self._only_owner(s.node_id)
    assert s.status == SLASH_HELD, "slash not open to appeal"
    assert block.timestamp < s.appeal_ends, "appeal window closed"
    self.slashes[slash_id].status = SLASH_APPEALED
    log SlashAppealed(slash_id=slash_id, node_id=s.node_id)


@external
def reverse_slash(slash_id: uint256):
    self._only_operator()
    s: Slash = self.slashes[slash_id]
    assert s.status == SLASH_APPEALED, "slash not appealed"
    assert block.timestamp < s.appeal_ends, "appeal window closed"
    self.slashes[slash_id].status = SLASH_REVERSED
    self.nodes[s.node_id].bond += s.amount
    log SlashReversed(slash_id=slash_id, node_id=s.node_id, amount=s.amount)


@external
def finalize_slash(slash_id: uint256):
    s: Slash = self.slashes[slash_id]
    assert s.status == SLASH_HELD or s.status == SLASH_APPEALED, "slash already settled"
    assert block.timestamp >= s.appeal_ends, "appeal window still open"
    self.slashes[slash_id].status = SLASH_FINAL
    self.pool += s.amount
    log SlashFinalized(slash_id=slash_id, node_id=s.node_id, amount=s.amount)
