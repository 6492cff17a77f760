"""A durable embedded chain: every transaction journaled to a file and replayed on start.

The embedded EVM lives in memory. So that the chain survives a restart (even
``kill -9``) like the database does, each successful transaction is appended
to ``data_dir/chain-journal.jsonl`` (flushed and fsynced before the caller
continues) as ``{"to", "data", "sender"}``. On start the contracts are
deployed again by the same operator key (kept in ``data_dir/operator.key``
unless one is configured), which gives the same addresses, and the journal is
replayed in order: the same blocks, the same transaction hashes, the same
state. The embedded transport executes as the sender's address, so replay
needs no custodial keys.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from wattx.private_files import open_private_append, private_dir, read_or_create_secret
from wattx.settlement.abi import RawLog
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.deploy import deploy_contracts
from wattx.settlement.embedded import EmbeddedTransport
from wattx.settlement.keys import new_signer, signer_from_private_key
from wattx.settlement.port import Signer
from wattx.settlement.transport import TxOutcome

JOURNAL_FILE = "chain-journal.jsonl"
OPERATOR_KEY_FILE = "operator.key"


class JournaledTransport:
    """An :class:`EmbeddedTransport` whose successful sends are appended to a journal."""

    def __init__(self, inner: EmbeddedTransport, journal: IO[str]) -> None:
        self._inner = inner
        self._journal = journal

    @property
    def chain_id(self) -> int:
        return self._inner.chain_id

    def deploy(self, code: bytes, signer: Signer) -> TxOutcome:
        outcome = self._inner.deploy(code, signer)
        self._append({"deploy": code.hex(), "sender": signer.address})
        return outcome

    def send(self, to: str, data: bytes, signer: Signer) -> TxOutcome:
        outcome = self._inner.send(to, data, signer)
        self._append({"to": to, "data": data.hex(), "sender": signer.address})
        return outcome

    def call(self, to: str, data: bytes) -> bytes:
        return self._inner.call(to, data)

    def logs(self, from_block: int, addresses: Sequence[str]) -> list[RawLog]:
        return self._inner.logs(from_block, addresses)

    def block_number(self) -> int:
        return self._inner.block_number()

    def timestamp(self) -> int:
        return self._inner.timestamp()

    def advance_time(self, seconds: int) -> None:
        self._inner.advance_time(seconds)
        self._append({"advance": seconds})

    def _append(self, entry: dict[str, object]) -> None:
        self._journal.write(json.dumps(entry, separators=(",", ":")) + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())


def _replay(transport: EmbeddedTransport, path: Path) -> None:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            if not line.endswith("\n"):
                break  # a write cut short by a crash: that transaction never returned
            entry = json.loads(line)
            if "advance" in entry:
                transport.advance_time(int(entry["advance"]))
                continue
            sender = Signer(address=str(entry["sender"]), private_key=b"")
            if "deploy" in entry:
                transport.deploy(bytes.fromhex(entry["deploy"]), sender)
            else:
                transport.send(str(entry["to"]), bytes.fromhex(entry["data"]), sender)


def open_durable_embedded_chain(data_dir: Path, operator: Signer | None) -> ContractChain:
    """The embedded chain of ``data_dir``: deployed, journal replayed, journaling on."""
    private_dir(data_dir)
    if operator is None:
        key_file = data_dir / OPERATOR_KEY_FILE
        operator = signer_from_private_key(
            read_or_create_secret(key_file, new_signer().private_key.hex())
        )
    transport = EmbeddedTransport()
    deployment = deploy_contracts(transport, operator, operator.address)
    journal_path = data_dir / JOURNAL_FILE
    _replay(transport, journal_path)
    journal = open_private_append(journal_path)
    return ContractChain(JournaledTransport(transport, journal), deployment, operator)
