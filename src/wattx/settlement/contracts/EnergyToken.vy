# pragma version ~=0.4.3
# pragma evm-version cancun
"""
@title EnergyToken
@notice Verified renewable energy: 9 decimals, 1 token = 1 kWh, so 1 Wh is
        10**6 base units. Only the meter oracle mints; a holder retires
        (burns) tokens against consumption, and the retirement is recorded.
"""

from ethereum.ercs import IERC20Detailed

import erc20

implements: IERC20Detailed

initializes: erc20

exports: (
    erc20.balanceOf,
    erc20.allowance,
    erc20.totalSupply,
    erc20.transfer,
    erc20.approve,
    erc20.transferFrom,
)

name: public(constant(String[25])) = "wattx energy"
symbol: public(constant(String[5])) = "WKWH"
decimals: public(constant(uint8)) = 9

deployer: public(immutable(address))
minter: public(address)
retired: public(HashMap[address, uint256])
total_retired: public(uint256)
retirement_count: public(uint256)


event MinterSet:
    minter: indexed(address)


event Retired:
    account: indexed(address)
    retirement_id: indexed(uint256)
    amount: uint256
    reason: String[64]


@deploy
def __init__():
    deployer = msg.sender


@external
def set_minter(new_minter: address):
    """
    @notice Name the oracle as the only minter. Callable once, by the deployer,
            so no one can later mint around the oracle's rules.
    """
    assert msg.sender == deployer, "caller is not the deployer"
    assert self.minter == empty(address), "minter already set"
    assert new_minter != empty(address), "minter is the zero address"
    self.minter = new_minter
    log MinterSet(minter=new_minter)


@external
def mint(receiver: address, amount: uint256):
    assert msg.sender == self.minter, "caller is not the minter"
    erc20._mint(receiver, amount)


@external
def retire(amount: uint256, reason: String[64]) -> uint256:
    """
    @notice Burn `amount` of the caller's tokens as consumed renewable energy.
    @return The id of the retirement record.
    """
    assert amount > 0, "nothing to retire"
    erc20._burn(msg.sender, amount)
    self.retired[msg.sender] += amount
    self.total_retired += amount
    retirement_id: uint256 = self.retirement_count + 1
    self.retirement_count = retirement_id
    log Retired(account=msg.sender, retirement_id=retirement_id, amount=amount, reason=reason)
    return retirement_id
