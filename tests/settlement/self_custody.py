"""What a self-custody participant's wallet does: sign its own transactions and permits."""

from __future__ import annotations

from typing import Any

from eth_account import Account

from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.jsonrpc import JsonRpcTransport
from wattx.settlement.keys import new_signer
from wattx.settlement.port import ParticipantRole, Signer, WithdrawPermit


def next_nonce(chain: ContractChain, address: str) -> int:
    """The sender's next nonce on a node; 0 on the embedded chain, which ignores it."""
    transport = chain.transport
    if isinstance(transport, JsonRpcTransport):
        return int(str(transport.request("eth_getTransactionCount", [address, "pending"])), 16)
    return 0


def signed_call(
    chain: ContractChain,
    signer: Signer,
    contract: str,
    function: str,
    *args: Any,
    nonce: int | None = None,
    chain_id: int | None = None,
) -> bytes:
    """A raw legacy transaction calling ``contract.function(*args)``, signed by ``signer``."""
    codec = chain._codecs[contract]
    tx = {
        "to": chain.deployment.address_of(contract),
        "data": codec.encode_call(function, args),
        "value": 0,
        "gas": 500_000,
        "gasPrice": 2 * 10**9,
        "nonce": next_nonce(chain, signer.address) if nonce is None else nonce,
        "chainId": chain.transport.chain_id if chain_id is None else chain_id,
    }
    return bytes(Account.sign_transaction(tx, signer.private_key).raw_transaction)


def permit_args(permit: WithdrawPermit) -> tuple[Any, ...]:
    """The arguments of ``withdraw_with_permit`` for ``permit``."""
    sig = permit.signature
    return (
        permit.token,
        permit.amount,
        permit.nonce,
        permit.deadline,
        sig[64],
        sig[:32],
        sig[32:64],
    )


def self_custody_user(chain: ContractChain, credit: int = 0) -> Signer:
    """An admitted, permit-only participant holding ``credit`` in its wallet (not deposited),
    with gas money on a node."""
    user = new_signer()
    chain.set_permit_only(user.address, True)
    chain.admit_participant(user.address, ParticipantRole.CONSUMER)
    transport = chain.transport
    if isinstance(transport, JsonRpcTransport):
        transport.request("anvil_setBalance", [user.address, hex(10**21)])
    if credit:
        chain.mint_credit(user.address, credit)
    return user
