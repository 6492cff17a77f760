# pragma version ~=0.4.3
# pragma evm-version cancun
"""
@title CreditToken
@notice The community's unit of account: 6 decimals, minted by an operator
        against money deposited off chain and burned when it is paid out.
        On a public chain any ERC-20 stablecoin takes its place.
"""

from ethereum.ercs import IERC20Detailed

import erc20
import roles
import IRegistry

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

name: public(constant(String[25])) = "wattx credit"
symbol: public(constant(String[5])) = "WCR"
decimals: public(constant(uint8)) = 6

registry: public(immutable(IRegistry))


@deploy
def __init__(registry_address: address):
    registry = IRegistry(registry_address)


@external
def mint(receiver: address, amount: uint256):
    """
    @notice Issue credit for money received off chain.
    """
    assert staticcall registry.has_role(msg.sender, roles.ROLE_OPERATOR), "caller is not an operator"
    erc20._mint(receiver, amount)


@external
def burn(amount: uint256):
    """
    @notice Destroy the caller's credit, e.g. when it is paid out off chain.
    """
    erc20._burn(msg.sender, amount)
