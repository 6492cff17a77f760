# pragma version ~=0.4.3
# pragma evm-version cancun
"""
@title NetworkIncentives
@notice Rewards for edge nodes. An operator registers nodes and reports every
        node's activity for a period in one batch (uptime in basis points, Wh
        routed); periods strictly increase, so no period is reported twice.
        The reward of one node's report is

            base * uptime_bps / 10_000 + routed_wh * rate_per_kwh / 1_000

        with `base` and `rate_per_kwh` the Governance parameters
        "incentive_base_per_period" and "incentive_rate_per_kwh" (credit
        micro-units), paid from a pool anyone can fund. A node's owner claims
        its accrued rewards. An auditor slashes a node that failed an audit:
        its unclaimed rewards return to the pool and it is suspended until an
        operator reinstates it.
"""

from ethereum.ercs import IERC20

import roles
import IRegistry

interface IParameters:
    def parameters(key: bytes32) -> uint256: view

struct Node:
    owner: address
    status: uint8
    pending: uint256


struct Report:
    node_id: bytes32
    uptime_bps: uint16
    routed_wh: uint64


MAX_REPORTS: constant(uint256) = 2_000


BASE_KEY: constant(bytes32) = keccak256("incentive_base_per_period")
RATE_KEY: constant(bytes32) = keccak256("incentive_rate_per_kwh")

registry: public(immutable(IRegistry))
governance: public(immutable(IParameters))
reward_token: public(immutable(IERC20))

nodes: public(HashMap[bytes32, Node])
pool: public(uint256)
last_period: public(uint64)


event NodeRegistered:
    node_id: indexed(bytes32)
    owner: indexed(address)


event PoolFunded:
    funder: indexed(address)
    amount: uint256


event ActivityReported:
    node_id: indexed(bytes32)
    period: uint64
    uptime_bps: uint16
    routed_wh: uint64
    reward: uint256


event RewardClaimed:
    node_id: indexed(bytes32)
    owner: indexed(address)
    amount: uint256


event NodeSlashed:
    node_id: indexed(bytes32)
    auditor: indexed(address)
    forfeited: uint256
    reason: String[64]


event NodeReinstated:
    node_id: indexed(bytes32)


@deploy
def __init__(registry_address: address, governance_address: address, reward_token_address: address):
    registry = IRegistry(registry_address)
    governance = IParameters(governance_address)
    reward_token = IERC20(reward_token_address)


@internal
def _only_operator():
    assert staticcall registry.has_role(msg.sender, roles.ROLE_OPERATOR), "caller is not an operator"


@external
def register_node(node_id: bytes32, owner: address):
    self._only_operator()
    assert node_id != empty(bytes32), "node id is empty"
    assert self.nodes[node_id].owner == empty(address), "node already registered"
    assert staticcall registry.is_active(owner), "owner is not an active participant"
    self.nodes[node_id] = Node(owner=owner, status=roles.STATUS_ACTIVE, pending=0)
    log NodeRegistered(node_id=node_id, owner=owner)


@external
def fund(amount: uint256):
    assert amount > 0, "nothing to fund"
    assert extcall reward_token.transferFrom(msg.sender, self, amount), "token transfer failed"
    self.pool += amount
    log PoolFunded(funder=msg.sender, amount=amount)


@external
def report_period(period: uint64, reports: DynArray[Report, MAX_REPORTS]) -> uint256:
    """
    @notice Every node's activity in `period`, in one transaction; returns the rewards
            paid out of the pool. Refused whole if one report is refused.
    """
    self._only_operator()
    assert period > self.last_period, "period already reported"
    base: uint256 = staticcall governance.parameters(BASE_KEY)
    rate: uint256 = staticcall governance.parameters(RATE_KEY)
    total: uint256 = 0
    for r: Report in reports:
        assert self.nodes[r.node_id].status == roles.STATUS_ACTIVE, "node is not active"
        assert r.uptime_bps <= 10_000, "uptime above 100 percent"
        reward: uint256 = base * convert(r.uptime_bps, uint256) // 10_000 + convert(r.routed_wh, uint256) * rate // 1_000
        total += reward
        self.nodes[r.node_id].pending += reward
        log ActivityReported(node_id=r.node_id, period=period, uptime_bps=r.uptime_bps, routed_wh=r.routed_wh, reward=reward)
    assert total <= self.pool, "reward pool exhausted"
    self.pool -= total
    self.last_period = period
    return total


@external
def claim(node_id: bytes32) -> uint256:
    node: Node = self.nodes[node_id]
    assert node.owner == msg.sender, "caller does not own the node"
    assert node.status == roles.STATUS_ACTIVE, "node is not active"
    amount: uint256 = node.pending
    assert amount > 0, "nothing to claim"
    self.nodes[node_id].pending = 0
    assert extcall reward_token.transfer(msg.sender, amount), "token transfer failed"
    log RewardClaimed(node_id=node_id, owner=msg.sender, amount=amount)
    return amount


@external
def slash(node_id: bytes32, reason: String[64]):
    assert staticcall registry.has_role(msg.sender, roles.ROLE_AUDITOR), "caller is not an auditor"
    node: Node = self.nodes[node_id]
    assert node.owner != empty(address), "unknown node"
    assert node.status == roles.STATUS_ACTIVE, "node is not active"
    self.pool += node.pending
    self.nodes[node_id].pending = 0
    self.nodes[node_id].status = roles.STATUS_SUSPENDED
    log NodeSlashed(node_id=node_id, auditor=msg.sender, forfeited=node.pending, reason=reason)


@external
def reinstate(node_id: bytes32):
    self._only_operator()
    assert self.nodes[node_id].status == roles.STATUS_SUSPENDED, "node is not suspended"
    self.nodes[node_id].status = roles.STATUS_ACTIVE
    log NodeReinstated(node_id=node_id)
