"""Checkpoints of the durable embedded chain: a restart replays only the journal's tail.

Replaying a transaction costs about a millisecond, so without checkpoints every
restart would replay the chain's whole life. Two files of the data directory
hold a checkpoint:

- ``chain-receipts.jsonl``, appended to: one line per journaled transaction up to
  the newest checkpoint, in order — ``{"hash", "block", "logs": [[address,
  [topic, …], data], …]}`` (hex) — which the chain must remember (events, known
  transactions) but cannot recompute without running them;
- ``chain-checkpoint.json``, replaced whole: the accounts, code and storage after
  those transactions (the EVM database's entries and state root), the latest
  block and its time, the state root of the deployment they were mined after, and
  where the checkpoint stands in both files (the journal's offset and the SHA-256
  of the journal line that ends there; the receipts' length and count).

The receipts are also where the chain's older logs are read from: once a
checkpoint has them on disk, the logs of all but the newest ``logs_kept_blocks``
blocks leave the chain's memory (:meth:`EmbeddedTransport.archive_logs`), so a
service that runs for a year does not keep a year of events in memory. The few
reads of old events (recovering a lost mint or settlement receipt, the governed
parameters' names) read them back from the file, which an index of every
``_INDEX_EVERY``-th line's block and offset lets them start near.

A checkpoint is used only when everything matches: the same deployment, the
journal still holding that line at that offset, the receipts file its whole
length. Otherwise (none yet, a journal restored from elsewhere, a file cut short
or edited) the journal is replayed whole, as without checkpoints; the next
checkpoint then writes the receipts anew. Either file written half by a crash
is found out the same way: the checkpoint is replaced only after the receipts it
counts are synced, and the receipts past its count are cut before appending.
"""

from __future__ import annotations

import hashlib
import json
import os
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from wattx.private_files import open_private_append, replace_private_file, write_whole
from wattx.settlement.abi import RawLog
from wattx.settlement.embedded import ChainState, EmbeddedTransport, MinedTransaction

CHECKPOINT_FILE = "chain-checkpoint.json"
RECEIPTS_FILE = "chain-receipts.jsonl"
_VERSION = 1

LOGS_KEPT_BLOCKS = 5_000
"""Blocks whose logs stay in memory behind the newest checkpoint (the event indexer reads
the newest blocks; older ones are read from the receipts)."""

_INDEX_EVERY = 256
"""Receipt lines between two entries of the index a read of old logs starts from."""

_log = structlog.get_logger("wattx.chain_checkpoint")


@dataclass(frozen=True, slots=True)
class JournalMark:
    """A place in the journal: the length of its first whole lines and the last of them."""

    offset: int
    last_line: bytes

    @property
    def last_line_sha256(self) -> str:
        return hashlib.sha256(self.last_line).hexdigest()


JOURNAL_START = JournalMark(0, b"")


class UnusableCheckpointError(ValueError):
    """The checkpoint does not belong to this journal and deployment, or is damaged."""


class _ReceiptIndex:
    """The block and byte offset of every ``_INDEX_EVERY``-th line of the receipts file."""

    def __init__(self) -> None:
        self.blocks = array("q")
        self.offsets = array("q")

    def add(self, line_number: int, block: int, offset: int) -> None:
        if line_number % _INDEX_EVERY == 0:
            self.blocks.append(block)
            self.offsets.append(offset)

    def start_for(self, block: int) -> int:
        """An offset of a line at or before the first line of ``block``."""
        at = bisect_right(self.blocks, block - 1) - 1
        return self.offsets[at] if at >= 0 else 0


class ChainCheckpoints:
    """The checkpoints of one data directory's embedded chain, and the archive of its
    older logs (:class:`wattx.settlement.embedded.LogArchive`)."""

    def __init__(self, data_dir: Path, *, logs_kept_blocks: int = LOGS_KEPT_BLOCKS) -> None:
        self._checkpoint = data_dir / CHECKPOINT_FILE
        self._receipts = data_dir / RECEIPTS_FILE
        self._logs_kept_blocks = logs_kept_blocks
        # What the newest checkpoint covers of the receipts file (nothing: write anew).
        self._receipts_bytes = 0
        self._receipts_count = 0
        self._index = _ReceiptIndex()
        self._first_block = 0  # the block of the receipts' first line

    def logs_between(self, first_block: int, last_block: int) -> Iterator[RawLog]:
        """The logs of blocks ``first_block`` to ``last_block``, read from the receipts."""
        with self._receipts.open("rb") as receipts:
            offset = self._index.start_for(first_block)
            receipts.seek(offset)
            while offset < self._receipts_bytes:
                line = receipts.readline()
                if not line.endswith(b"\n"):
                    raise UnusableCheckpointError("the receipts end before the checkpoint")
                offset += len(line)
                entry = json.loads(line)
                block = int(entry["block"])
                if block > last_block:
                    return
                if block >= first_block:
                    yield from _mined(entry).logs

    def _archive_old_logs(self, transport: EmbeddedTransport, block_number: int) -> None:
        """Leave the logs of blocks the receipts hold, but the newest, to the receipts."""
        last = block_number - self._logs_kept_blocks
        if self._receipts_count and last >= self._first_block:
            transport.archive_logs(self, self._first_block, last)

    def restore(self, transport: EmbeddedTransport, journal: Path) -> JournalMark:
        """Bring ``transport`` (just deployed) to the newest usable checkpoint; returns where
        in the journal to replay from (its start when there is none)."""
        if not self._checkpoint.exists():
            return JOURNAL_START
        try:
            state, mined, mark, receipts_bytes, index = self._read(transport, journal)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _log.warning("chain_checkpoint_unused", reason=str(exc))
            return JOURNAL_START
        transport.restore(state, mined)
        self._receipts_bytes, self._receipts_count = receipts_bytes, len(mined)
        self._index, self._first_block = index, mined[0].block_number if mined else 0
        self._archive_old_logs(transport, state.block_number)
        return mark

    def save(self, transport: EmbeddedTransport, deployed: int, mark: JournalMark) -> None:
        """A checkpoint of ``transport`` standing at ``mark`` of the journal; ``deployed`` is
        how many of its transactions were the deployment's (they are not journaled)."""
        started_from = transport.started_from
        if started_from is None:
            raise RuntimeError("a chain that did not start from a deployment")
        mined = transport.mined_after(deployed + self._receipts_count)
        lines = [_receipt_line(transaction) for transaction in mined]
        # Index entries of the new lines, kept only once the checkpoint counts them.
        index = self._index if self._receipts_count else _ReceiptIndex()
        new_entries: list[tuple[int, int, int]] = []
        offset = self._receipts_bytes
        for number, (transaction, line) in enumerate(zip(mined, lines, strict=True)):
            new_entries.append((self._receipts_count + number, transaction.block_number, offset))
            offset += len(line)
        with open_private_append(self._receipts) as receipts:
            # Past the newest checkpoint's count is what a crash left half done.
            os.ftruncate(receipts.fileno(), self._receipts_bytes)
            write_whole(receipts, b"".join(lines))
            os.fsync(receipts.fileno())
        receipts_bytes = offset
        count = self._receipts_count + len(mined)
        state = transport.state()
        checkpoint = {
            "version": _VERSION,
            "deployment_root": started_from.hex(),
            "journal_offset": mark.offset,
            "journal_last_line_sha256": mark.last_line_sha256,
            "receipts_bytes": receipts_bytes,
            "transactions": count,
            "state_root": state.state_root.hex(),
            "block_number": state.block_number,
            "timestamp": state.timestamp,
            "nodes": {key.hex(): value.hex() for key, value in state.nodes.items()},
        }
        replace_private_file(self._checkpoint, json.dumps(checkpoint).encode("utf-8"))
        if not self._receipts_count and mined:
            self._first_block = mined[0].block_number
        for entry in new_entries:
            index.add(*entry)
        self._index = index
        self._receipts_bytes, self._receipts_count = receipts_bytes, count
        self._archive_old_logs(transport, state.block_number)

    def _read(
        self, transport: EmbeddedTransport, journal: Path
    ) -> tuple[ChainState, list[MinedTransaction], JournalMark, int, _ReceiptIndex]:
        found: dict[str, Any] = json.loads(self._checkpoint.read_bytes())
        if found["version"] != _VERSION:
            raise UnusableCheckpointError(f"checkpoint version {found['version']}")
        started_from = transport.started_from
        if started_from is None or found["deployment_root"] != started_from.hex():
            raise UnusableCheckpointError("made after another deployment")
        offset = int(found["journal_offset"])
        mark = JournalMark(offset, _line_ending_at(journal, offset))
        if mark.last_line_sha256 != found["journal_last_line_sha256"]:
            raise UnusableCheckpointError("made from another journal")
        receipts_bytes, count = int(found["receipts_bytes"]), int(found["transactions"])
        index = _ReceiptIndex()
        # Logs the chain will not keep in memory are not built (only their hashes).
        logs_after = int(found["block_number"]) - self._logs_kept_blocks
        mined = _read_receipts(self._receipts, receipts_bytes, index, logs_after=logs_after)
        if len(mined) != count:
            raise UnusableCheckpointError(f"{len(mined)} receipts, the checkpoint counts {count}")
        state = ChainState(
            nodes={bytes.fromhex(k): bytes.fromhex(v) for k, v in found["nodes"].items()},
            state_root=bytes.fromhex(found["state_root"]),
            block_number=int(found["block_number"]),
            timestamp=int(found["timestamp"]),
        )
        if state.state_root not in state.nodes:
            raise UnusableCheckpointError("the state root is not among the checkpoint's nodes")
        if mined and mined[-1].block_number != state.block_number:
            raise UnusableCheckpointError("the receipts end before the checkpoint's block")
        return state, mined, mark, receipts_bytes, index


def _line_ending_at(journal: Path, offset: int) -> bytes:
    """The journal line that ends at ``offset`` (empty at the start)."""
    if offset <= 0:
        return b""
    with journal.open("rb") as file:
        # A line is one transaction's call data: read back far enough for the longest.
        start = max(0, offset - (1 << 22))
        file.seek(start)
        before = file.read(offset - start)
    if len(before) != offset - start or not before.endswith(b"\n"):
        raise UnusableCheckpointError("the journal ends before the checkpoint")
    return before[before.rfind(b"\n", 0, len(before) - 1) + 1 :]


def _receipt_line(transaction: MinedTransaction) -> bytes:
    logs = [
        [log.address, [topic.hex() for topic in log.topics], log.data.hex()]
        for log in transaction.logs
    ]
    entry = {"hash": transaction.tx_hash, "block": transaction.block_number, "logs": logs}
    return (json.dumps(entry, separators=(",", ":")) + "\n").encode("utf-8")


def _read_receipts(
    path: Path, length: int, index: _ReceiptIndex, *, logs_after: int
) -> list[MinedTransaction]:
    """The first ``length`` bytes of receipts, indexed into ``index``; the logs of blocks
    up to ``logs_after`` are left out. Read a line at a time: a year's file is hundreds
    of megabytes."""
    mined: list[MinedTransaction] = []
    offset = 0
    with path.open("rb") as file:
        for number, line in enumerate(file):
            if offset + len(line) > length or not line.endswith(b"\n"):
                break  # past the checkpoint (a crash's leftovers) or cut short
            entry = json.loads(line)
            transaction = _mined(entry, with_logs=int(entry["block"]) > logs_after)
            index.add(number, transaction.block_number, offset)
            mined.append(transaction)
            offset += len(line)
    if offset != length:
        raise UnusableCheckpointError("the receipts end before the checkpoint")
    return mined


def _mined(entry: dict[str, Any], *, with_logs: bool = True) -> MinedTransaction:
    tx_hash, block = str(entry["hash"]), int(entry["block"])
    return MinedTransaction(
        tx_hash=tx_hash,
        block_number=block,
        logs=tuple(
            RawLog(
                address=str(address),
                topics=tuple(bytes.fromhex(topic) for topic in topics),
                data=bytes.fromhex(data),
                block_number=block,
                tx_hash=tx_hash,
                log_index=index,
            )
            for index, (address, topics, data) in enumerate(entry["logs"] if with_logs else ())
        ),
    )
