"""The transport under a chain adapter: raw deploys, transactions, calls and logs.

:class:`~wattx.settlement.contract_chain.ContractChain` speaks ABI on top of
it; the embedded EVM and a JSON-RPC node each implement it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from eth_abi.abi import decode

from wattx.settlement.abi import RawLog
from wattx.settlement.port import Signer

_ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")


@dataclass(frozen=True, slots=True)
class TxOutcome:
    """A mined transaction that succeeded."""

    tx_hash: str
    block_number: int
    gas_used: int
    logs: tuple[RawLog, ...]
    contract_address: str | None = None


class Transport(Protocol):
    @property
    def chain_id(self) -> int: ...

    def deploy(self, code: bytes, signer: Signer) -> TxOutcome: ...

    def send(self, to: str, data: bytes, signer: Signer) -> TxOutcome: ...

    def call(self, to: str, data: bytes) -> bytes: ...

    def logs(
        self, from_block: int, addresses: Sequence[str], to_block: int | None = None
    ) -> list[RawLog]:
        """The logs of ``addresses`` in blocks ``from_block`` to ``to_block`` (both
        included; the head when None), in chain order."""
        ...

    def block_number(self) -> int: ...

    def transaction_known(self, tx_hash: str) -> bool: ...

    def timestamp(self) -> int: ...

    def advance_time(self, seconds: int) -> None: ...


def revert_reason(revert_data: bytes) -> str:
    """The string of an ``Error(string)`` revert, or ``''`` for any other revert data."""
    if revert_data[:4] != _ERROR_STRING_SELECTOR:
        return ""
    try:
        (reason,) = decode(["string"], revert_data[4:])
    except Exception:
        # Malformed revert data carries no reason worth reporting.
        return ""
    return str(reason)


def intrinsic_gas(data: bytes, *, creates: bool = False) -> int:
    """The gas a transaction pays before execution (Istanbul calldata prices, Shanghai initcode)."""
    zeros = data.count(0)
    gas = 21_000 + 4 * zeros + 16 * (len(data) - zeros)
    if creates:
        gas += 32_000 + 2 * ((len(data) + 31) // 32)
    return gas
