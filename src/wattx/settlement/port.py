"""The chain port: what the service asks of the settlement chain, and the records it gets back.

Amounts follow the chain's units: energy in energy-token base units (1 Wh =
10**6, see :func:`wattx.units.wh_to_energy_base_units`), credit in micro-units.
Addresses are checksummed ``0x`` strings. The calls block until the
transaction is mined; an async service runs them in a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, Protocol, runtime_checkable

from wattx.domain.errors import ValidationError
from wattx.settlement.batch import EpochBatch
from wattx.settlement.deployment import Deployment


class RelayRefusedError(ValidationError):
    """A signed transaction the relay will not send (see ``ChainPort.send_raw_transaction``)."""

    code = "relay_refused"
    title = "Transaction not relayed"


@dataclass(frozen=True, slots=True)
class Signer:
    """An account that signs transactions: its address and its secp256k1 private key."""

    address: str
    private_key: bytes = field(repr=False)


class Asset(StrEnum):
    ENERGY = "energy"
    CREDIT = "credit"


class ParticipantRole(IntEnum):
    """Role codes of the Registry contract (``roles.vy``)."""

    PROSUMER = 1
    CONSUMER = 2
    NODE_OPERATOR = 3
    OPERATOR = 4
    AUDITOR = 5


class RecordStatus(IntEnum):
    """Status codes of participants, meters and nodes (``roles.vy``)."""

    ACTIVE = 1
    SUSPENDED = 2


@dataclass(frozen=True, slots=True)
class Balances:
    """An account's escrow in the Marketplace."""

    free_energy: int
    locked_energy: int
    free_credit: int
    locked_credit: int


@dataclass(frozen=True, slots=True)
class MeterMint:
    """Verified net export of one meter in one period, to be minted to its owner."""

    meter_id: bytes
    period: int
    owner: str
    wh: int

    def as_tuple(self) -> tuple[bytes, int, str, int]:
        return (self.meter_id, self.period, self.owner, self.wh)


@dataclass(frozen=True, slots=True)
class GovernanceRules:
    """How the Governance contract decides: seconds of voting and of timelock, and the
    quorum in Wh of verified generation."""

    voting_period_s: int
    timelock_s: int
    quorum_wh: int


@dataclass(frozen=True, slots=True)
class OnChainProposal:
    """A Governance proposal as the contract stores it (times are block timestamps)."""

    proposal_id: int
    proposer: str
    parameter_key: bytes
    new_value: int
    voting_ends: int
    executable_at: int
    votes_for: int
    votes_against: int
    executed: bool


@dataclass(frozen=True, slots=True)
class ChainEvent:
    """One decoded contract event, for the indexer."""

    contract: str
    name: str
    args: Mapping[str, Any]
    block_number: int
    tx_hash: str
    log_index: int


@dataclass(frozen=True, slots=True)
class TxResult:
    """A mined, successful transaction."""

    tx_hash: str
    block_number: int
    gas_used: int
    events: tuple[ChainEvent, ...] = ()


@dataclass(frozen=True, slots=True)
class WithdrawPermit:
    """An operator's one-time permission for ``account`` to withdraw ``amount`` of ``token``
    from the Marketplace (``withdraw_with_permit``) until ``deadline`` (unix seconds).

    ``signature`` is the operator's 65-byte EIP-191 ``personal_sign`` (r, s, v) over
    ``digest``, the keccak256 of the ABI encoding of (chain id, Marketplace, account,
    token, amount, nonce, deadline).
    """

    account: str
    asset: Asset
    token: str
    amount: int
    nonce: int
    deadline: int
    digest: bytes
    signature: bytes


@runtime_checkable
class ChainPort(Protocol):
    """The settlement chain as the service uses it. Every failed rule raises a
    :class:`~wattx.settlement.errors.ContractRevertError` subclass carrying the
    contract's reason."""

    @property
    def deployment(self) -> Deployment: ...

    @property
    def operator_address(self) -> str: ...

    def admit_participant(self, address: str, role: ParticipantRole) -> TxResult: ...

    def add_zone(self, zone: bytes) -> TxResult: ...

    def register_meter(
        self, meter_id: bytes, owner: str, zone: bytes, rated_wh: int
    ) -> TxResult: ...

    def mint_credit(self, to: str, amount: int) -> TxResult: ...

    def mint_readings(
        self, readings: Sequence[MeterMint], *, batch_id: bytes | None = None
    ) -> TxResult:
        """Mint through the oracle; with ``batch_id`` (32 bytes) the oracle mints that
        batch at most once and logs ``BatchMinted`` with it."""
        ...

    def is_batch_minted(self, batch_id: bytes) -> bool: ...

    def deposit(self, signer: Signer, asset: Asset, amount: int) -> TxResult: ...

    def withdraw(self, signer: Signer, asset: Asset, amount: int) -> TxResult: ...

    def send_raw_transaction(self, raw: bytes, *, sender: str) -> TxResult:
        """Relay a transaction ``sender`` signed: only ``approve`` on a token, a
        Marketplace deposit or withdrawal, or a Governance vote (see
        :meth:`wattx.settlement.contract_chain.ContractChain.send_raw_transaction`)."""
        ...

    def set_permit_only(self, address: str, permit_only: bool) -> TxResult: ...

    def sign_withdraw_permit(
        self, account: str, asset: Asset, amount: int, nonce: int, deadline: int
    ) -> WithdrawPermit:
        """The operator's signed permit (no transaction)."""
        ...

    def cancel_permit(self, address: str, nonce: int) -> TxResult: ...

    def timestamp(self) -> int: ...

    def lock(self, address: str, energy: int, credit: int) -> TxResult: ...

    def unlock(self, address: str, energy: int, credit: int) -> TxResult: ...

    def retire(self, signer: Signer, amount: int, reason: str) -> TxResult: ...

    def settle_epoch(self, batch: EpochBatch) -> TxResult: ...

    def balances(self, address: str) -> Balances: ...

    def wallet_balance(self, address: str, asset: Asset) -> int: ...

    def is_settled(self, epoch_id: int) -> bool: ...

    def epoch_root(self, epoch_id: int) -> bytes: ...

    def verify_trade_proof(self, epoch_id: int, leaf: bytes, proof: Sequence[bytes]) -> bool: ...

    def governance_rules(self) -> GovernanceRules: ...

    def governed_parameter(self, key: bytes) -> tuple[bool, int, int]: ...

    def proposal_count(self) -> int: ...

    def proposal(self, proposal_id: int) -> OnChainProposal | None: ...

    def has_voted(self, proposal_id: int, address: str) -> bool: ...

    def generated_wh(self, address: str) -> int: ...

    def propose(self, signer: Signer, parameter_key: bytes, new_value: int) -> TxResult: ...

    def vote(self, signer: Signer, proposal_id: int, support: bool) -> TxResult: ...

    def execute_proposal(self, proposal_id: int) -> TxResult: ...

    def events_since(self, from_block: int, to_block: int | None = None) -> list[ChainEvent]: ...

    def block_number(self) -> int: ...
