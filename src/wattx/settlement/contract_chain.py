"""The chain port implemented once, over any :class:`Transport`.

The adapters differ only in their transport: :class:`EmbeddedChain` runs
py-evm in-process, :class:`JsonRpcChain` talks to a node.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from eth_abi.abi import decode
from eth_account import Account
from eth_account._utils.legacy_transactions import Transaction as LegacyTransaction
from eth_account.messages import encode_defunct
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.abi import function_signature_to_4byte_selector
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from wattx.settlement.abi import RawLog, codec_of
from wattx.settlement.batch import EpochBatch
from wattx.settlement.deployment import Deployment
from wattx.settlement.errors import FeeAccountMismatchError
from wattx.settlement.port import (
    Asset,
    Balances,
    ChainEvent,
    GovernanceRules,
    MeterMint,
    OnChainProposal,
    ParticipantRole,
    RelayRefusedError,
    Signer,
    TxResult,
    WithdrawPermit,
)
from wattx.settlement.transport import Transport, TxOutcome

_DEPOSIT = {Asset.ENERGY: "deposit_energy", Asset.CREDIT: "deposit_credit"}
_WITHDRAW = {Asset.ENERGY: "withdraw_energy", Asset.CREDIT: "withdraw_credit"}
_TOKEN = {Asset.ENERGY: "EnergyToken", Asset.CREDIT: "CreditToken"}
STANDING_APPROVAL = 2**256 - 1
"""The allowance a custodial account gives the Marketplace with its first deposit: the
tokens do not count it down, so no later deposit needs an ``approve``."""

# What a participant may have the service relay: (contract, function signature).
_RELAYABLE = {
    ("CreditToken", "approve(address,uint256)"),
    ("EnergyToken", "approve(address,uint256)"),
    ("Marketplace", "deposit_energy(uint256)"),
    ("Marketplace", "deposit_credit(uint256)"),
    ("Marketplace", "withdraw_with_permit(address,uint256,uint256,uint256,uint8,bytes32,bytes32)"),
    ("Governance", "vote(uint256,bool)"),
}
_RELAY_SELECTORS = {
    (contract, function_signature_to_4byte_selector(signature)): signature
    for contract, signature in _RELAYABLE
}


LOG_WINDOW_BLOCKS = 2_000
"""The most blocks one log query spans. Nodes and providers refuse or cut longer ranges
(commonly beyond a few thousand blocks), and a reader that stores each window as it goes
keeps its progress through a long catch-up."""


def block_windows(
    first_block: int, last_block: int, size: int = LOG_WINDOW_BLOCKS
) -> Iterator[tuple[int, int]]:
    """Blocks ``first_block`` to ``last_block`` (both included) as consecutive ranges of at
    most ``size`` blocks, each given by its first and last block."""
    for start in range(first_block, last_block + 1, size):
        yield start, min(start + size - 1, last_block)


@dataclass(frozen=True, slots=True)
class SignedTransaction:
    """The parts of a signed raw transaction the relay checks."""

    tx_hash: str
    sender: str
    to: str | None
    data: bytes
    value: int
    chain_id: int | None


def decode_signed_transaction(raw: bytes) -> SignedTransaction:
    """Decode a signed legacy or typed (EIP-2718) transaction and recover its sender."""
    try:
        if raw[:1] and raw[0] <= 0x7F:
            fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
            chain_id: int | None = int(fields["chainId"])
        else:
            fields = LegacyTransaction.from_bytes(raw).as_dict()
            v = int(fields["v"])
            # EIP-155: v = chain id * 2 + 35 or 36; 27/28 carry no chain id.
            chain_id = (v - 35) // 2 if v >= 35 else None
        sender = Account.recover_transaction(raw)
    except Exception as exc:  # eth-account and rlp raise many unrelated types on bad input
        raise RelayRefusedError(f"not a signed Ethereum transaction: {exc}") from None
    to = bytes(fields.get("to") or b"")
    return SignedTransaction(
        tx_hash="0x" + keccak(raw).hex(),
        sender=to_checksum_address(sender),
        to=to_checksum_address(to) if to else None,
        data=bytes(fields.get("data") or b""),
        value=int(fields.get("value") or 0),
        chain_id=chain_id,
    )


@runtime_checkable
class RawTransactionTransport(Protocol):
    """A transport that can broadcast a transaction signed elsewhere (a node can; the
    embedded EVM executes the call as its sender instead)."""

    def send_raw(self, raw: bytes) -> TxOutcome: ...


@runtime_checkable
class ConcurrentReadsTransport(Protocol):
    """A transport whose reads may run beside a pending transaction (a node's)."""

    def forget_nonces(self) -> None: ...


class ContractChain:
    """Calls the deployed wattx contracts through a transport (implements ``ChainPort``)."""

    def __init__(self, transport: Transport, deployment: Deployment, operator: Signer) -> None:
        self._transport = transport
        self._deployment = deployment
        self._operator = operator
        self._codecs = {name: codec_of(name) for name in deployment.contracts}
        self._by_address = {
            address.lower(): self._codecs[name] for name, address in deployment.contracts.items()
        }

    # -- generic access -------------------------------------------------

    @property
    def deployment(self) -> Deployment:
        return self._deployment

    @property
    def operator_address(self) -> str:
        return self._operator.address

    @property
    def transport(self) -> Transport:
        return self._transport

    def transact(
        self, contract: str, function: str, *args: Any, signer: Signer | None = None
    ) -> TxResult:
        """Send ``contract.function(*args)`` signed by ``signer`` (the operator by default)."""
        data = self._codecs[contract].encode_call(function, args)
        outcome = self._transport.send(
            self._deployment.address_of(contract), data, signer or self._operator
        )
        return self._result(outcome)

    def view(self, contract: str, function: str, *args: Any) -> Any:
        """Call a view of ``contract`` and decode its result."""
        codec = self._codecs[contract]
        raw = self._transport.call(
            self._deployment.address_of(contract), codec.encode_call(function, args)
        )
        return codec.decode_result(function, raw)

    def advance_time(self, seconds: int) -> None:
        self._transport.advance_time(seconds)

    def timestamp(self) -> int:
        return self._transport.timestamp()

    def _decode(self, log: RawLog) -> ChainEvent | None:
        codec = self._by_address.get(log.address.lower())
        decoded = codec.decode_log(log) if codec else None
        if codec is None or decoded is None:
            return None
        return ChainEvent(
            contract=codec.name,
            name=decoded.name,
            args=decoded.args,
            block_number=log.block_number,
            tx_hash=log.tx_hash,
            log_index=log.log_index,
        )

    def _result(self, outcome: TxOutcome) -> TxResult:
        events = tuple(e for e in map(self._decode, outcome.logs) if e is not None)
        return TxResult(
            tx_hash=outcome.tx_hash,
            block_number=outcome.block_number,
            gas_used=outcome.gas_used,
            events=events,
        )

    # -- the port ---------------------------------------------------------

    def admit_participant(self, address: str, role: ParticipantRole) -> TxResult:
        return self.transact("Registry", "admit", address, int(role))

    def add_zone(self, zone: bytes) -> TxResult:
        return self.transact("Registry", "add_zone", zone)

    def register_meter(self, meter_id: bytes, owner: str, zone: bytes, rated_wh: int) -> TxResult:
        return self.transact("Registry", "register_meter", meter_id, owner, zone, rated_wh)

    def mint_credit(self, to: str, amount: int) -> TxResult:
        return self.transact("CreditToken", "mint", to, amount)

    def mint_readings(
        self, readings: Sequence[MeterMint], *, batch_id: bytes | None = None
    ) -> TxResult:
        batch = [r.as_tuple() for r in readings]
        if batch_id is None:
            return self.transact("MeterOracle", "submit", batch)
        return self.transact("MeterOracle", "submit_batch", batch_id, batch)

    def is_batch_minted(self, batch_id: bytes) -> bool:
        return bool(self.view("MeterOracle", "minted_batches", batch_id))

    def deposit(self, signer: Signer, asset: Asset, amount: int) -> TxResult:
        """Deposit ``amount`` into the Marketplace: one transaction once the account's
        standing approval is in place, two for its first deposit of the asset.

        The first deposit approves the Marketplace for the largest amount, which the
        tokens never count down, so later deposits need no ``approve`` of their own.
        That grants nothing to anyone else: the Marketplace moves an account's
        tokens only in ``deposit_*``, from the caller, so only the account (here:
        the service with its custodial key) can make it pull them.
        """
        marketplace = self._deployment.address_of("Marketplace")
        token = _TOKEN[asset]
        if int(self.view(token, "allowance", signer.address, marketplace)) < amount:
            self.transact(token, "approve", marketplace, STANDING_APPROVAL, signer=signer)
        return self.transact("Marketplace", _DEPOSIT[asset], amount, signer=signer)

    def withdraw(self, signer: Signer, asset: Asset, amount: int) -> TxResult:
        return self.transact("Marketplace", _WITHDRAW[asset], amount, signer=signer)

    def send_raw_transaction(self, raw: bytes, *, sender: str) -> TxResult:
        """Relay a transaction signed by ``sender`` (the participant's own key).

        Only calls of the allow-list pass: ``approve`` of the Marketplace on a token,
        a Marketplace deposit, ``withdraw_with_permit``, a Governance ``vote``; no
        ether, this chain's id.
        A node receives the raw bytes as they are (its nonce rules apply); the
        embedded EVM has no mempool, so the call runs there as from ``sender`` and
        the signed nonce and gas are not used (the caller refuses replays).
        """
        tx = self.check_relayable(raw, sender=sender)
        if isinstance(self._transport, RawTransactionTransport):
            return self._result(self._transport.send_raw(raw))
        assert tx.to is not None
        return self._result(self._transport.send(tx.to, tx.data, Signer(tx.sender, b"")))

    def check_relayable(self, raw: bytes, *, sender: str) -> SignedTransaction:
        """The decoded transaction, if the relay may send it for ``sender``."""
        tx = decode_signed_transaction(raw)
        if tx.sender != to_checksum_address(sender):
            raise RelayRefusedError(
                "the transaction is not signed by your address", signer=tx.sender, address=sender
            )
        if tx.chain_id != self._transport.chain_id:
            raise RelayRefusedError(
                "the transaction is for another chain",
                chain_id=tx.chain_id,
                expected=self._transport.chain_id,
            )
        if tx.value:
            raise RelayRefusedError("the relay sends no ether", value=tx.value)
        contract = next(
            (
                name
                for name, address in self._deployment.contracts.items()
                if tx.to is not None and address.lower() == tx.to.lower()
            ),
            None,
        )
        signature = _RELAY_SELECTORS.get((contract or "", tx.data[:4]))
        if contract is None or signature is None:
            raise RelayRefusedError(
                "only approve, deposit, withdraw_with_permit and governance vote calls are relayed",
                to=tx.to,
            )
        if signature.startswith("approve("):
            (spender, _amount) = decode(["address", "uint256"], tx.data[4:])
            if to_checksum_address(spender) != self._deployment.address_of("Marketplace"):
                raise RelayRefusedError("only approvals of the Marketplace are relayed")
        return tx

    def set_permit_only(self, address: str, permit_only: bool) -> TxResult:
        return self.transact("Marketplace", "set_permit_only", address, permit_only)

    def sign_withdraw_permit(
        self, account: str, asset: Asset, amount: int, nonce: int, deadline: int
    ) -> WithdrawPermit:
        """The operator's permit for ``account`` (signed locally; nothing is sent)."""
        token = self._deployment.address_of(_TOKEN[asset])
        digest = bytes(
            self.view("Marketplace", "permit_digest", account, token, amount, nonce, deadline)
        )
        signed = Account.sign_message(
            encode_defunct(primitive=digest), private_key=self._operator.private_key
        )
        return WithdrawPermit(
            account=to_checksum_address(account),
            asset=asset,
            token=token,
            amount=amount,
            nonce=nonce,
            deadline=deadline,
            digest=digest,
            signature=bytes(signed.signature),
        )

    def cancel_permit(self, address: str, nonce: int) -> TxResult:
        return self.transact("Marketplace", "cancel_permit", address, nonce)

    def permit_used(self, address: str, nonce: int) -> bool:
        return bool(self.view("Marketplace", "permit_used", address, nonce))

    def lock(self, address: str, energy: int, credit: int) -> TxResult:
        return self.transact("Marketplace", "lock", address, energy, credit)

    def unlock(self, address: str, energy: int, credit: int) -> TxResult:
        return self.transact("Marketplace", "unlock", address, energy, credit)

    def retire(self, signer: Signer, amount: int, reason: str) -> TxResult:
        return self.transact("EnergyToken", "retire", amount, reason, signer=signer)

    def settle_epoch(self, batch: EpochBatch) -> TxResult:
        """Settle ``batch`` in one transaction; refuses a batch built for another fee account."""
        fee_account = self.view("Marketplace", "fee_account")
        if to_checksum_address(batch.fee_account) != fee_account:
            raise FeeAccountMismatchError(
                f"batch pays fees to {batch.fee_account}, the Marketplace to {fee_account}"
            )
        return self.transact(
            "Marketplace",
            "settle_epoch",
            batch.epoch_id,
            batch.merkle_root,
            batch.trade_count,
            [d.as_tuple() for d in batch.deltas],
            batch.fee_energy,
            batch.fee_credit,
        )

    def balances(self, address: str) -> Balances:
        free_e, locked_e, free_c, locked_c = self.view("Marketplace", "balances", address)
        return Balances(
            free_energy=free_e, locked_energy=locked_e, free_credit=free_c, locked_credit=locked_c
        )

    def wallet_balance(self, address: str, asset: Asset) -> int:
        return int(self.view(_TOKEN[asset], "balanceOf", address))

    def is_settled(self, epoch_id: int) -> bool:
        return bool(self.view("Marketplace", "epoch_settled", epoch_id))

    def epoch_root(self, epoch_id: int) -> bytes:
        return bytes(self.view("Marketplace", "epoch_root", epoch_id))

    def verify_trade_proof(self, epoch_id: int, leaf: bytes, proof: Sequence[bytes]) -> bool:
        return bool(self.view("Marketplace", "verify_trade_proof", epoch_id, leaf, list(proof)))

    # -- governance ---------------------------------------------------------

    def governance_rules(self) -> GovernanceRules:
        """The Governance contract's voting period, timelock and quorum."""
        return GovernanceRules(
            voting_period_s=int(self.view("Governance", "voting_period")),
            timelock_s=int(self.view("Governance", "timelock")),
            quorum_wh=int(self.view("Governance", "quorum_wh")),
        )

    def governed_parameter(self, key: bytes) -> tuple[bool, int, int]:
        """Whether the parameter ``key`` (keccak256 of its name) is defined, its value and
        the most a proposal may set."""
        return (
            bool(self.view("Governance", "parameter_defined", key)),
            int(self.view("Governance", "parameters", key)),
            int(self.view("Governance", "parameter_max", key)),
        )

    def proposal_count(self) -> int:
        return int(self.view("Governance", "proposal_count"))

    def proposal(self, proposal_id: int) -> OnChainProposal | None:
        """The proposal as the contract stores it, or ``None`` for an unknown id."""
        fields = self.view("Governance", "proposals", proposal_id)
        proposer, parameter, new_value, voting_ends, executable_at, for_, against, done = fields
        if int(proposer, 16) == 0:
            return None
        return OnChainProposal(
            proposal_id=proposal_id,
            proposer=to_checksum_address(proposer),
            parameter_key=bytes(parameter),
            new_value=int(new_value),
            voting_ends=int(voting_ends),
            executable_at=int(executable_at),
            votes_for=int(for_),
            votes_against=int(against),
            executed=bool(done),
        )

    def has_voted(self, proposal_id: int, address: str) -> bool:
        return bool(self.view("Governance", "has_voted", proposal_id, address))

    def generated_wh(self, address: str) -> int:
        """Lifetime verified generation of ``address`` (the MeterOracle's), its voting weight."""
        return int(self.view("MeterOracle", "generated_wh", address))

    def propose(self, signer: Signer, parameter_key: bytes, new_value: int) -> TxResult:
        return self.transact("Governance", "propose", parameter_key, new_value, signer=signer)

    def vote(self, signer: Signer, proposal_id: int, support: bool) -> TxResult:
        return self.transact("Governance", "vote", proposal_id, support, signer=signer)

    def define_parameter(self, name: str, initial: int, maximum: int) -> TxResult:
        """Define a governed parameter (the operator, once per name)."""
        return self.transact("Governance", "define_parameter", name, initial, maximum)

    def execute_proposal(self, proposal_id: int) -> TxResult:
        """Execute a passed proposal (anyone may; the operator pays)."""
        return self.transact("Governance", "execute", proposal_id)

    def events_since(self, from_block: int, to_block: int | None = None) -> list[ChainEvent]:
        """The contracts' events of blocks ``from_block`` to ``to_block`` (both included;
        the head when None). A node may refuse a range too long (providers limit a log
        query to some thousands of blocks): :func:`block_windows` cuts one."""
        logs = self._transport.logs(from_block, list(self._deployment.contracts.values()), to_block)
        return [e for e in map(self._decode, logs) if e is not None]

    def block_number(self) -> int:
        return self._transport.block_number()

    @property
    def reads_beside_writes(self) -> bool:
        """Whether views may run while a transaction is under way (a node serves both;
        the embedded EVM is one object that must not be used from two threads)."""
        return isinstance(self._transport, ConcurrentReadsTransport)

    def transaction_known(self, tx_hash: str) -> bool:
        """Whether the chain holds the mined transaction ``tx_hash``."""
        return self._transport.transaction_known(tx_hash)

    def resync_nonces(self) -> None:
        """Re-read every sender's nonce from the chain before its next transaction."""
        if isinstance(self._transport, ConcurrentReadsTransport):
            self._transport.forget_nonces()
