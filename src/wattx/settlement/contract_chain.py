"""The chain port implemented once, over any :class:`Transport`.

The adapters differ only in their transport: :class:`EmbeddedChain` runs
py-evm in-process, :class:`JsonRpcChain` talks to a node.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_utils.address import to_checksum_address

from wattx.settlement.abi import ContractCodec, RawLog
from wattx.settlement.artifacts import load_artifact
from wattx.settlement.batch import EpochBatch
from wattx.settlement.deployment import Deployment
from wattx.settlement.errors import FeeAccountMismatchError
from wattx.settlement.port import (
    Asset,
    Balances,
    ChainEvent,
    MeterMint,
    ParticipantRole,
    Signer,
    TxResult,
)
from wattx.settlement.transport import Transport, TxOutcome

_DEPOSIT = {Asset.ENERGY: "deposit_energy", Asset.CREDIT: "deposit_credit"}
_WITHDRAW = {Asset.ENERGY: "withdraw_energy", Asset.CREDIT: "withdraw_credit"}
_TOKEN = {Asset.ENERGY: "EnergyToken", Asset.CREDIT: "CreditToken"}


class ContractChain:
    """Calls the deployed wattx contracts through a transport (implements ``ChainPort``)."""

    def __init__(self, transport: Transport, deployment: Deployment, operator: Signer) -> None:
        self._transport = transport
        self._deployment = deployment
        self._operator = operator
        self._codecs = {name: ContractCodec(load_artifact(name)) for name in deployment.contracts}
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

    def mint_readings(self, readings: Sequence[MeterMint]) -> TxResult:
        return self.transact("MeterOracle", "submit", [r.as_tuple() for r in readings])

    def deposit(self, signer: Signer, asset: Asset, amount: int) -> TxResult:
        """Approve the Marketplace for ``amount`` and deposit it (two transactions)."""
        marketplace = self._deployment.address_of("Marketplace")
        self.transact(_TOKEN[asset], "approve", marketplace, amount, signer=signer)
        return self.transact("Marketplace", _DEPOSIT[asset], amount, signer=signer)

    def withdraw(self, signer: Signer, asset: Asset, amount: int) -> TxResult:
        return self.transact("Marketplace", _WITHDRAW[asset], amount, signer=signer)

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

    def events_since(self, from_block: int) -> list[ChainEvent]:
        logs = self._transport.logs(from_block, list(self._deployment.contracts.values()))
        return [e for e in map(self._decode, logs) if e is not None]

    def block_number(self) -> int:
        return self._transport.block_number()
