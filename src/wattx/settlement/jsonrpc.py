"""The JSON-RPC chain: any EVM node through web3.py (anvil in tests, Besu in production).

Nonces are kept per sender in the process (fetched once from the node's
pending count, then counted locally), so several transactions can be sent
without waiting for the node to see the previous ones; a rejected send drops
the cached nonce so the next one re-reads it, and so does a receipt timeout
(a node that lost its last blocks on restart counts lower than the process:
a transaction with a nonce beyond the node's never mines). Reads
(``eth_call``, logs, receipts) share nothing with the write path, so they
run beside a transaction waiting for its receipt. Every call is estimated first,
which surfaces a revert with the contract's reason before anything is signed;
a transaction that still fails when mined is replayed with ``eth_call`` to
recover the reason.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import requests
from eth_account import Account
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    TimeExhausted,
    TransactionNotFound,
    Web3RPCError,
)
from web3.middleware import ExtraDataToPOAMiddleware
from web3.types import Nonce, RPCEndpoint, TxParams, Wei

from wattx.settlement.abi import RawLog
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.deploy import DeploySettings, deploy_contracts
from wattx.settlement.deployment import Deployment
from wattx.settlement.errors import (
    ChainError,
    ChainUnavailableError,
    TransactionTimeoutError,
    revert_error,
)
from wattx.settlement.port import Signer
from wattx.settlement.transport import TxOutcome, revert_reason

T = TypeVar("T")

_EXECUTION_REVERTED = "execution reverted"


def _reason_of(exc: ContractLogicError) -> str:
    data = exc.data
    if isinstance(data, str) and data.startswith("0x"):
        reason = revert_reason(bytes.fromhex(data[2:]))
        if reason:
            return reason
    message = str(exc.message or exc)
    # Nodes word it "execution reverted: <reason>"; keep only the reason.
    return message.split(": ", 1)[1] if message.startswith(_EXECUTION_REVERTED + ":") else ""


class JsonRpcTransport:
    """Signed legacy transactions (type 0, which Besu and anvil both take) over HTTP."""

    def __init__(
        self,
        rpc_url: str,
        *,
        receipt_timeout: float = 60.0,
        poll_interval: float = 0.05,
        gas_funder: Signer | None = None,
        gas_topup_wei: int = 10**17,
    ) -> None:
        """``gas_funder`` (usually the operator) tops up a signer that cannot pay for gas
        with ``gas_topup_wei``; on a zero-gas-price network nothing is ever sent."""
        self._w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        # Proof-of-authority chains (Besu QBFT/Clique) carry signer data in extraData.
        self._w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
        self._receipt_timeout = receipt_timeout
        self._poll_interval = poll_interval
        self._gas_funder = gas_funder
        self._gas_topup_wei = gas_topup_wei
        self._nonces: dict[str, int] = {}
        self._lock = threading.Lock()
        self._chain_id = self._rpc(lambda: int(self._w3.eth.chain_id))

    @property
    def chain_id(self) -> int:
        return self._chain_id

    @staticmethod
    def _rpc(operation: Callable[[], T]) -> T:
        try:
            return operation()
        except (requests.exceptions.ConnectionError, ProviderConnectionError) as exc:
            raise ChainUnavailableError(f"cannot reach the chain node: {exc}") from None

    def _next_nonce(self, address: str) -> int:
        with self._lock:
            if address not in self._nonces:
                self._nonces[address] = self._rpc(
                    lambda: int(
                        self._w3.eth.get_transaction_count(to_checksum_address(address), "pending")
                    )
                )
            nonce = self._nonces[address]
            self._nonces[address] = nonce + 1
            return nonce

    def forget_nonces(self) -> None:
        """Re-read every sender's nonce from the node on its next transaction."""
        with self._lock:
            self._nonces.clear()

    def _estimate(self, tx: TxParams) -> int:
        try:
            return self._rpc(lambda: int(self._w3.eth.estimate_gas(tx)))
        except ContractLogicError as exc:
            raise revert_error(_reason_of(exc)) from None

    def _ensure_gas_money(self, signer: Signer, gas: int, gas_price: int) -> None:
        funder = self._gas_funder
        cost = gas * gas_price
        if funder is None or cost == 0 or signer.address == funder.address:
            return
        balance = self._rpc(
            lambda: int(self._w3.eth.get_balance(to_checksum_address(signer.address)))
        )
        if balance < cost:
            top_up: TxParams = {
                "from": funder.address,
                "to": signer.address,
                "value": Wei(max(self._gas_topup_wei, cost - balance)),
                "gas": 21_000,
            }
            self._sign_send_wait(top_up, funder, gas_price)

    def _sign_send_wait(self, tx: TxParams, signer: Signer, gas_price: int) -> Any:
        address = signer.address
        tx = {**tx, "gasPrice": Wei(gas_price), "chainId": self._chain_id}
        tx["nonce"] = Nonce(self._next_nonce(address))
        signed = Account.sign_transaction(cast(dict[str, Any], tx), signer.private_key)
        try:
            tx_hash = self._rpc(lambda: self._w3.eth.send_raw_transaction(signed.raw_transaction))
        except (Web3RPCError, ValueError) as exc:
            with self._lock:
                self._nonces.pop(address, None)
            raise ChainError(f"the node rejected the transaction: {exc}") from None
        try:
            return self._rpc(
                lambda: self._w3.eth.wait_for_transaction_receipt(
                    tx_hash, timeout=self._receipt_timeout, poll_latency=self._poll_interval
                )
            )
        except TimeExhausted:
            # The node may count this sender lower than the process does (it lost
            # blocks): the next transaction re-reads the nonce from the node.
            with self._lock:
                self._nonces.pop(address, None)
            raise TransactionTimeoutError(
                f"transaction {tx_hash.to_0x_hex()} not mined within {self._receipt_timeout} s"
            ) from None

    def transaction_known(self, tx_hash: str) -> bool:
        """Whether the node has a receipt for ``tx_hash`` (a mined transaction)."""
        try:
            receipt = self._rpc(lambda: self._w3.eth.get_transaction_receipt(HexBytes(tx_hash)))
        except TransactionNotFound:
            return False
        return receipt is not None

    def _transact(self, tx: TxParams, signer: Signer, data: bytes) -> Any:
        gas = self._estimate(tx)
        # Estimates are exact for the state they ran on; the margin absorbs
        # state that changes before the transaction is mined.
        gas = gas + gas // 5 + 10_000
        gas_price = self._rpc(lambda: int(self._w3.eth.gas_price))
        self._ensure_gas_money(signer, gas, gas_price)
        receipt = self._sign_send_wait({**tx, "gas": gas}, signer, gas_price)
        if receipt["status"] != 1:
            replay: TxParams = {k: v for k, v in tx.items() if k != "nonce"}  # type: ignore[assignment]
            try:
                self._w3.eth.call(replay, block_identifier=receipt["blockNumber"] - 1)
            except ContractLogicError as exc:
                raise revert_error(_reason_of(exc)) from None
            raise revert_error("")
        return receipt

    def _outcome(self, receipt: Any) -> TxOutcome:
        tx_hash = HexBytes(receipt["transactionHash"]).to_0x_hex()
        logs = tuple(self._raw_log(log) for log in receipt["logs"])
        address = receipt.get("contractAddress")
        return TxOutcome(
            tx_hash=tx_hash,
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            logs=logs,
            contract_address=to_checksum_address(address) if address else None,
        )

    @staticmethod
    def _raw_log(log: Any) -> RawLog:
        return RawLog(
            address=to_checksum_address(log["address"]),
            topics=tuple(bytes(t) for t in log["topics"]),
            data=bytes(log["data"]),
            block_number=int(log["blockNumber"]),
            tx_hash=HexBytes(log["transactionHash"]).to_0x_hex(),
            log_index=int(log["logIndex"]),
        )

    def deploy(self, code: bytes, signer: Signer) -> TxOutcome:
        tx: TxParams = {"from": signer.address, "data": HexBytes(code), "value": Wei(0)}
        return self._outcome(self._transact(tx, signer, code))

    def send(self, to: str, data: bytes, signer: Signer) -> TxOutcome:
        tx: TxParams = {
            "from": signer.address,
            "to": to_checksum_address(to),
            "data": HexBytes(data),
            "value": Wei(0),
        }
        return self._outcome(self._transact(tx, signer, data))

    def send_raw(self, raw: bytes) -> TxOutcome:
        """Broadcast a transaction signed elsewhere (a self-custody participant's) and
        wait for it; a revert is replayed with ``eth_call`` for its reason."""
        try:
            tx_hash = self._rpc(lambda: self._w3.eth.send_raw_transaction(raw))
        except (Web3RPCError, ValueError) as exc:
            raise ChainError(f"the node rejected the transaction: {exc}") from None
        try:
            receipt = self._rpc(
                lambda: self._w3.eth.wait_for_transaction_receipt(
                    tx_hash, timeout=self._receipt_timeout, poll_latency=self._poll_interval
                )
            )
        except TimeExhausted:
            raise TransactionTimeoutError(
                f"transaction {tx_hash.to_0x_hex()} not mined within {self._receipt_timeout} s"
            ) from None
        if receipt["status"] != 1:
            sent = self._rpc(lambda: self._w3.eth.get_transaction(tx_hash))
            replay: TxParams = {"from": sent["from"], "to": sent["to"], "data": sent["input"]}
            try:
                self._w3.eth.call(replay, block_identifier=receipt["blockNumber"] - 1)
            except ContractLogicError as exc:
                raise revert_error(_reason_of(exc)) from None
            raise revert_error("")
        return self._outcome(receipt)

    def call(self, to: str, data: bytes) -> bytes:
        tx: TxParams = {"to": to_checksum_address(to), "data": HexBytes(data)}
        try:
            return bytes(self._rpc(lambda: self._w3.eth.call(tx)))
        except ContractLogicError as exc:
            raise revert_error(_reason_of(exc)) from None

    def logs(
        self, from_block: int, addresses: Sequence[str], to_block: int | None = None
    ) -> list[RawLog]:
        found = self._rpc(
            lambda: self._w3.eth.get_logs(
                {
                    "fromBlock": from_block,
                    "toBlock": "latest" if to_block is None else to_block,
                    "address": [to_checksum_address(a) for a in addresses],
                }
            )
        )
        return [self._raw_log(log) for log in found]

    def block_number(self) -> int:
        return self._rpc(lambda: int(self._w3.eth.block_number))

    def timestamp(self) -> int:
        return self._rpc(lambda: int(self._w3.eth.get_block("latest")["timestamp"]))

    def request(self, method: str, params: list[Any]) -> Any:
        """A raw JSON-RPC request (node-specific methods such as ``evm_snapshot``)."""
        response = self._rpc(lambda: self._w3.provider.make_request(RPCEndpoint(method), params))
        if "error" in response:
            raise ChainError(f"{method} failed: {response['error']}")
        return response["result"]

    def advance_time(self, seconds: int) -> None:
        """Move the node's clock (development nodes only: anvil, hardhat)."""
        self.request("evm_increaseTime", [seconds])
        self.request("evm_mine", [])


class JsonRpcChain(ContractChain):
    """The wattx contracts on a JSON-RPC node."""

    def __init__(self, transport: JsonRpcTransport, deployment: Deployment, operator: Signer):
        if transport.chain_id != deployment.chain_id:
            raise ChainError(
                f"the node runs chain {transport.chain_id}, "
                f"the deployment is for chain {deployment.chain_id}"
            )
        super().__init__(transport, deployment, operator)
        self._rpc_transport = transport

    @classmethod
    def connect(cls, rpc_url: str, deployment: Deployment, operator: Signer) -> JsonRpcChain:
        """Use contracts deployed before (see ``wattx chain deploy``)."""
        return cls(JsonRpcTransport(rpc_url, gas_funder=operator), deployment, operator)

    @classmethod
    def deploy(
        cls,
        rpc_url: str,
        operator: Signer,
        fee_account: str | None = None,
        settings: DeploySettings | None = None,
    ) -> JsonRpcChain:
        """Deploy and wire every contract, then use them."""
        transport = JsonRpcTransport(rpc_url, gas_funder=operator)
        deployment = deploy_contracts(
            transport, operator, fee_account or operator.address, settings
        )
        return cls(transport, deployment, operator)

    def snapshot(self) -> str:
        """Snapshot the node's state (anvil/hardhat ``evm_snapshot``)."""
        return str(self._rpc_transport.request("evm_snapshot", []))

    def revert(self, snapshot: str) -> None:
        """Return to a snapshot; local nonces are re-read afterwards."""
        self._rpc_transport.request("evm_revert", [snapshot])
        self._rpc_transport.forget_nonces()
