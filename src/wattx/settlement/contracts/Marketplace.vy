# pragma version ~=0.4.3
# pragma evm-version cancun
"""
@title Marketplace
@notice Escrow and epoch settlement. Admitted participants deposit energy
        tokens and credit; each account has a free and a locked balance of
        each. The operator locks what an open order needs and unlocks what it
        no longer needs; a withdrawal only takes free balance.

        An epoch settles in one call carrying, per account, the net change of
        energy and credit, the fee totals for the fee account and the Merkle
        root of the epoch's trades. A negative change is taken from the
        account's locked balance first (the orders' escrow), then from its
        free balance; a positive change is added to the free balance. The call
        reverts unless the changes plus the fees sum to zero for energy and
        for credit, no balance would go negative, and the epoch is new.

        A self-custody account (the operator marks it ``permit_only``) holds
        its own key, so it could withdraw what the service has reserved for
        its open orders off chain; it withdraws only with a one-time permit
        an operator signs after reserving the amount off chain
        (``withdraw_with_permit``).
"""

from ethereum.ercs import IERC20

import roles
import IRegistry

struct AccountDelta:
    account: address
    energy: int256
    credit: int256


struct TradeLeaf:
    epoch_id: uint64
    trade_id_hash: bytes32
    buyer: address
    seller: address
    qty_wh: uint64
    delivered_wh: uint64
    price: uint64
    trade_value: uint128
    buyer_fee: uint128
    seller_fee: uint128
    wheeling_fee: uint128


struct Balances:
    free_energy: uint256
    locked_energy: uint256
    free_credit: uint256
    locked_credit: uint256


MAX_ACCOUNTS: constant(uint256) = 2048
MAX_PROOF: constant(uint256) = 64

registry: public(immutable(IRegistry))
energy_token: public(immutable(IERC20))
credit_token: public(immutable(IERC20))
fee_account: public(address)

free_energy: public(HashMap[address, uint256])
locked_energy: public(HashMap[address, uint256])
free_credit: public(HashMap[address, uint256])
locked_credit: public(HashMap[address, uint256])

epoch_root: public(HashMap[uint64, bytes32])
epoch_settled: public(HashMap[uint64, bool])
settled_epoch_count: public(uint256)

permit_only: public(HashMap[address, bool])
permit_used: public(HashMap[address, HashMap[uint256, bool]])


event Deposited:
    account: indexed(address)
    token: indexed(address)
    amount: uint256


event Withdrawn:
    account: indexed(address)
    token: indexed(address)
    amount: uint256


event Locked:
    account: indexed(address)
    energy: uint256
    credit: uint256


event Unlocked:
    account: indexed(address)
    energy: uint256
    credit: uint256


event PermitOnlyChanged:
    account: indexed(address)
    permit_only: bool


event PermitUsed:
    account: indexed(address)
    nonce: uint256
    withdrawn: bool


event FeeAccountChanged:
    fee_account: indexed(address)


event AccountSettled:
    epoch_id: indexed(uint64)
    account: indexed(address)
    energy: int256
    credit: int256


event EpochSettled:
    epoch_id: indexed(uint64)
    merkle_root: bytes32
    trade_count: uint256
    account_count: uint256
    fee_energy: uint256
    fee_credit: uint256


@deploy
def __init__(
    registry_address: address,
    energy_token_address: address,
    credit_token_address: address,
    initial_fee_account: address,
):
    assert initial_fee_account != empty(address), "fee account is the zero address"
    registry = IRegistry(registry_address)
    energy_token = IERC20(energy_token_address)
    credit_token = IERC20(credit_token_address)
    self.fee_account = initial_fee_account
    log FeeAccountChanged(fee_account=initial_fee_account)


@internal
def _only_operator():
    assert staticcall registry.has_role(msg.sender, roles.ROLE_OPERATOR), "caller is not an operator"


@external
def set_fee_account(new_fee_account: address):
    self._only_operator()
    assert new_fee_account != empty(address), "fee account is the zero address"
    self.fee_account = new_fee_account
    log FeeAccountChanged(fee_account=new_fee_account)


@external
def deposit_energy(amount: uint256):
    assert amount > 0, "nothing to deposit"
    assert staticcall registry.is_active(msg.sender), "not an active participant"
    assert extcall energy_token.transferFrom(msg.sender, self, amount), "token transfer failed"
    self.free_energy[msg.sender] += amount
    log Deposited(account=msg.sender, token=energy_token.address, amount=amount)


@external
def deposit_credit(amount: uint256):
    assert amount > 0, "nothing to deposit"
    assert staticcall registry.is_active(msg.sender), "not an active participant"
    assert extcall credit_token.transferFrom(msg.sender, self, amount), "token transfer failed"
    self.free_credit[msg.sender] += amount
    log Deposited(account=msg.sender, token=credit_token.address, amount=amount)


@external
def withdraw_energy(amount: uint256):
    assert amount > 0, "nothing to withdraw"
    assert not self.permit_only[msg.sender], "withdrawal needs a permit"
    free: uint256 = self.free_energy[msg.sender]
    assert free >= amount, "withdrawal exceeds free energy"
    self.free_energy[msg.sender] = free - amount
    assert extcall energy_token.transfer(msg.sender, amount), "token transfer failed"
    log Withdrawn(account=msg.sender, token=energy_token.address, amount=amount)


@external
def withdraw_credit(amount: uint256):
    assert amount > 0, "nothing to withdraw"
    assert not self.permit_only[msg.sender], "withdrawal needs a permit"
    free: uint256 = self.free_credit[msg.sender]
    assert free >= amount, "withdrawal exceeds free credit"
    self.free_credit[msg.sender] = free - amount
    assert extcall credit_token.transfer(msg.sender, amount), "token transfer failed"
    log Withdrawn(account=msg.sender, token=credit_token.address, amount=amount)


@external
def set_permit_only(account: address, permit_only: bool):
    """
    @notice Require (or stop requiring) an operator's permit for the account's withdrawals.
    """
    self._only_operator()
    assert account != empty(address), "account is the zero address"
    self.permit_only[account] = permit_only
    log PermitOnlyChanged(account=account, permit_only=permit_only)


@view
@external
def permit_digest(
    account: address, token: address, amount: uint256, nonce: uint256, deadline: uint256
) -> bytes32:
    """
    @notice What the operator signs with ``personal_sign``: the keccak256 of the ABI
            encoding of (chain id, this contract, account, token, amount, nonce, deadline).
    """
    return keccak256(abi_encode(chain.id, self, account, token, amount, nonce, deadline))


@external
def withdraw_with_permit(
    token: address, amount: uint256, nonce: uint256, deadline: uint256, v: uint8, r: bytes32, s: bytes32
):
    """
    @notice Withdraw free balance of ``token`` with a one-time permit an operator signed
            (EIP-191 personal message over ``permit_digest``) for the caller.
    """
    assert amount > 0, "nothing to withdraw"
    assert block.timestamp <= deadline, "permit expired"
    assert not self.permit_used[msg.sender][nonce], "permit already used"
    inner: bytes32 = keccak256(abi_encode(chain.id, self, msg.sender, token, amount, nonce, deadline))
    signer: address = ecrecover(
        keccak256(concat(b"\x19Ethereum Signed Message:\n32", inner)), v, r, s
    )
    assert signer != empty(address), "permit signature invalid"
    assert staticcall registry.has_role(signer, roles.ROLE_OPERATOR), "permit not signed by an operator"
    self.permit_used[msg.sender][nonce] = True
    if token == energy_token.address:
        free_e: uint256 = self.free_energy[msg.sender]
        assert free_e >= amount, "withdrawal exceeds free energy"
        self.free_energy[msg.sender] = free_e - amount
        assert extcall energy_token.transfer(msg.sender, amount), "token transfer failed"
    else:
        assert token == credit_token.address, "permit for an unknown token"
        free_c: uint256 = self.free_credit[msg.sender]
        assert free_c >= amount, "withdrawal exceeds free credit"
        self.free_credit[msg.sender] = free_c - amount
        assert extcall credit_token.transfer(msg.sender, amount), "token transfer failed"
    log PermitUsed(account=msg.sender, nonce=nonce, withdrawn=True)
    log Withdrawn(account=msg.sender, token=token, amount=amount)


@external
def cancel_permit(account: address, nonce: uint256):
    """
    @notice Void an unused permit, so the operator may release what it reserved off chain.
    """
    self._only_operator()
    assert not self.permit_used[account][nonce], "permit already used"
    self.permit_used[account][nonce] = True
    log PermitUsed(account=account, nonce=nonce, withdrawn=False)


@external
def lock(account: address, energy: uint256, credit: uint256):
    """
    @notice Move free balance into escrow for an open order.
    """
    self._only_operator()
    free_e: uint256 = self.free_energy[account]
    free_c: uint256 = self.free_credit[account]
    assert free_e >= energy, "lock exceeds free energy"
    assert free_c >= credit, "lock exceeds free credit"
    self.free_energy[account] = free_e - energy
    self.locked_energy[account] += energy
    self.free_credit[account] = free_c - credit
    self.locked_credit[account] += credit
    log Locked(account=account, energy=energy, credit=credit)


@external
def unlock(account: address, energy: uint256, credit: uint256):
    """
    @notice Release escrow an order no longer needs.
    """
    self._only_operator()
    locked_e: uint256 = self.locked_energy[account]
    locked_c: uint256 = self.locked_credit[account]
    assert locked_e >= energy, "unlock exceeds locked energy"
    assert locked_c >= credit, "unlock exceeds locked credit"
    self.locked_energy[account] = locked_e - energy
    self.free_energy[account] += energy
    self.locked_credit[account] = locked_c - credit
    self.free_credit[account] += credit
    log Unlocked(account=account, energy=energy, credit=credit)


@external
def settle_epoch(
    epoch_id: uint64,
    merkle_root: bytes32,
    trade_count: uint256,
    deltas: DynArray[AccountDelta, MAX_ACCOUNTS],
    fee_energy: uint256,
    fee_credit: uint256,
):
    """
    @notice Apply one epoch's netted trades in a single transaction.
    """
    self._only_operator()
    assert not self.epoch_settled[epoch_id], "epoch already settled"
    energy_sum: int256 = convert(fee_energy, int256)
    credit_sum: int256 = convert(fee_credit, int256)
    for d: AccountDelta in deltas:
        energy_sum += d.energy
        credit_sum += d.credit
        if d.energy < 0:
            self._debit_energy(d.account, convert(-d.energy, uint256))
        elif d.energy > 0:
            self.free_energy[d.account] += convert(d.energy, uint256)
        if d.credit < 0:
            self._debit_credit(d.account, convert(-d.credit, uint256))
        elif d.credit > 0:
            self.free_credit[d.account] += convert(d.credit, uint256)
        log AccountSettled(epoch_id=epoch_id, account=d.account, energy=d.energy, credit=d.credit)
    assert energy_sum == 0, "energy not conserved"
    assert credit_sum == 0, "credit not conserved"
    fees_to: address = self.fee_account
    self.free_energy[fees_to] += fee_energy
    self.free_credit[fees_to] += fee_credit
    self.epoch_settled[epoch_id] = True
    self.epoch_root[epoch_id] = merkle_root
    self.settled_epoch_count += 1
    log EpochSettled(
        epoch_id=epoch_id,
        merkle_root=merkle_root,
        trade_count=trade_count,
        account_count=len(deltas),
        fee_energy=fee_energy,
        fee_credit=fee_credit,
    )


@internal
def _debit_energy(account: address, amount: uint256):
    locked: uint256 = self.locked_energy[account]
    if locked >= amount:
        self.locked_energy[account] = locked - amount
        return
    rest: uint256 = amount - locked
    free: uint256 = self.free_energy[account]
    assert free >= rest, "energy balance would go negative"
    if locked != 0:
        self.locked_energy[account] = 0
    self.free_energy[account] = free - rest


@internal
def _debit_credit(account: address, amount: uint256):
    locked: uint256 = self.locked_credit[account]
    if locked >= amount:
        self.locked_credit[account] = locked - amount
        return
    rest: uint256 = amount - locked
    free: uint256 = self.free_credit[account]
    assert free >= rest, "credit balance would go negative"
    if locked != 0:
        self.locked_credit[account] = 0
    self.free_credit[account] = free - rest


@view
@external
def balances(account: address) -> Balances:
    return Balances(
        free_energy=self.free_energy[account],
        locked_energy=self.locked_energy[account],
        free_credit=self.free_credit[account],
        locked_credit=self.locked_credit[account],
    )


@pure
@internal
def _leaf(t: TradeLeaf) -> bytes32:
    return keccak256(
        abi_encode(
            t.epoch_id,
            t.trade_id_hash,
            t.buyer,
            t.seller,
            t.qty_wh,
            t.delivered_wh,
            t.price,
            t.trade_value,
            t.buyer_fee,
            t.seller_fee,
            t.wheeling_fee,
        )
    )


@pure
@external
def trade_leaf(t: TradeLeaf) -> bytes32:
    """
    @notice The Merkle leaf of a trade: keccak256 of the ABI encoding of its fields.
    """
    return self._leaf(t)


@view
@internal
def _verify(epoch_id: uint64, leaf: bytes32, proof: DynArray[bytes32, MAX_PROOF]) -> bool:
    if not self.epoch_settled[epoch_id]:
        return False
    node: bytes32 = leaf
    for sibling: bytes32 in proof:
        # Sorted pairs: a proof is just the siblings, no left/right flags.
        if convert(node, uint256) < convert(sibling, uint256):
            node = keccak256(concat(node, sibling))
        else:
            node = keccak256(concat(sibling, node))
    return node == self.epoch_root[epoch_id]


@view
@external
def verify_trade_proof(epoch_id: uint64, leaf: bytes32, proof: DynArray[bytes32, MAX_PROOF]) -> bool:
    """
    @notice True if `leaf` is in the settled epoch's Merkle tree.
    """
    return self._verify(epoch_id, leaf, proof)


@view
@external
def verify_trade(epoch_id: uint64, t: TradeLeaf, proof: DynArray[bytes32, MAX_PROOF]) -> bool:
    """
    @notice True if the trade with these fields was settled in the epoch. The
            leaf is computed here, so a proof cannot stand for an inner node.
    """
    return t.epoch_id == epoch_id and self._verify(epoch_id, self._leaf(t), proof)
