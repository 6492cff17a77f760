"""A durable embedded chain: every transaction journaled to a file and replayed on start.

The embedded EVM lives in memory. So that the chain survives a restart (even
``kill -9``) like the database does, each successful transaction is appended
to ``data_dir/chain-journal.jsonl`` (flushed and fsynced before the caller
continues) as ``{"to", "data", "sender", "at"}``, ``at`` being its block's
time. On start the contracts are deployed again by the same operator key (kept
in ``data_dir/operator.key`` unless one is configured), which gives the same
addresses, and the journal is replayed in order, each transaction mined at its
own ``at``: the same blocks, the same transaction hashes, the same state — the
deadlines contracts stored (votes, appeals, unbonding) and the ones callers
signed (withdrawal permits) judged at the times they first were. After the
replay the clock goes on from the later of the last block's time and the
restart's, as a node's does across a downtime. The embedded transport executes
as the sender's address, so replay needs no custodial keys.

A journal written before lines carried their times is replayed as it was then
(each block a second after the one before, from the restart's time) and then
rewritten, whole, with the times that replay gave, so from then on each restart
sees the same chain.

A transaction is final only once its line is on disk: if the append fails
(a full disk), the journal is cut back to where it was, the transaction is
undone in the EVM and the caller gets :class:`ChainUnavailableError` — the chain
never holds what the journal does not. Should the cut fail too, the chain
refuses every further transaction until a restart. A line torn by a crash
(no newline) belongs to a transaction that never returned: replay stops
before it and the file is cut to the last whole line before anything is
appended, so later lines never follow a fragment.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import structlog

from wattx.private_files import (
    open_private_append,
    private_dir,
    read_or_create_secret,
    replace_private_file,
    write_whole,
)
from wattx.services.onchain.chain_checkpoint import (
    JOURNAL_START,
    LOGS_KEPT_BLOCKS,
    ChainCheckpoints,
    JournalMark,
)
from wattx.settlement.abi import RawLog
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.deploy import DeploySettings
from wattx.settlement.embedded import EmbeddedTransport, deploy_embedded
from wattx.settlement.errors import ChainUnavailableError
from wattx.settlement.keys import new_signer, signer_from_private_key
from wattx.settlement.port import Signer
from wattx.settlement.transport import TxOutcome

JOURNAL_FILE = "chain-journal.jsonl"
OPERATOR_KEY_FILE = "operator.key"

_log = structlog.get_logger("wattx.chain_journal")


CHECKPOINT_EVERY = 1_000
"""Journal lines between two checkpoints: a restart replays at most about this many."""

REPLAY_PROGRESS_EVERY = 10_000
"""Journal lines between two progress lines of the log while a start replays them."""


class JournaledTransport:
    """An :class:`EmbeddedTransport` whose transactions are final only once journaled,
    checkpointed every ``every`` lines when given ``checkpoints`` (``deployed``: how many
    of the chain's transactions were its deployment's; ``mark``: where the journal ends)."""

    def __init__(
        self,
        inner: EmbeddedTransport,
        journal: IO[bytes],
        *,
        checkpoints: ChainCheckpoints | None = None,
        deployed: int = 0,
        mark: JournalMark = JOURNAL_START,
        every: int = CHECKPOINT_EVERY,
    ) -> None:
        self._inner = inner
        self._journal = journal
        self._broken: str | None = None
        self._checkpoints = checkpoints
        self._deployed = deployed
        self._mark = mark
        self._every = every
        self._since_checkpoint = 0

    @property
    def chain_id(self) -> int:
        return self._inner.chain_id

    def deploy(self, code: bytes, signer: Signer) -> TxOutcome:
        self._usable()
        entry: dict[str, object] = {"deploy": code.hex(), "sender": signer.address}
        outcome = self._inner.deploy(
            code, signer, confirm=lambda _outcome: self._append_mined(entry)
        )
        self._checkpoint_when_due()
        return outcome

    def send(self, to: str, data: bytes, signer: Signer) -> TxOutcome:
        self._usable()
        entry: dict[str, object] = {"to": to, "data": data.hex(), "sender": signer.address}
        outcome = self._inner.send(
            to, data, signer, confirm=lambda _outcome: self._append_mined(entry)
        )
        self._checkpoint_when_due()
        return outcome

    def call(self, to: str, data: bytes) -> bytes:
        return self._inner.call(to, data)

    def logs(
        self, from_block: int, addresses: Sequence[str], to_block: int | None = None
    ) -> list[RawLog]:
        return self._inner.logs(from_block, addresses, to_block)

    def block_number(self) -> int:
        return self._inner.block_number()

    def timestamp(self) -> int:
        return self._inner.timestamp()

    def transaction_known(self, tx_hash: str) -> bool:
        return self._inner.transaction_known(tx_hash)

    def advance_time(self, seconds: int) -> None:
        self._usable()
        self._append({"advance": seconds})
        self._inner.advance_time(seconds)
        self._checkpoint_when_due()

    def checkpoint(self) -> None:
        """Checkpoint the chain as it is now (see :mod:`.chain_checkpoint`). A failure is
        logged and the journal, which holds everything, goes on alone until the next."""
        self._since_checkpoint = 0
        if self._checkpoints is None:
            return
        try:
            self._checkpoints.save(self._inner, self._deployed, self._mark)
        except Exception as exc:
            # Whatever went wrong, the caller's transaction is journaled and final: failing
            # it now would have the caller send it again.
            _log.warning("chain_checkpoint_failed", reason=str(exc), error=type(exc).__name__)

    def _checkpoint_when_due(self) -> None:
        self._since_checkpoint += 1
        if self._since_checkpoint >= self._every:
            self.checkpoint()

    def _usable(self) -> None:
        if self._broken is not None:
            raise ChainUnavailableError(
                f"the chain journal is unusable until a restart: {self._broken}"
            )

    def _append_mined(self, entry: dict[str, object]) -> None:
        # Called while the transaction's block is the latest: its time is the chain's.
        self._append({**entry, "at": self._inner.timestamp()})

    def _append(self, entry: dict[str, object]) -> None:
        line = (json.dumps(entry, separators=(",", ":")) + "\n").encode("utf-8")
        fd = self._journal.fileno()
        size = os.fstat(fd).st_size
        try:
            write_whole(self._journal, line)
            self._journal.flush()
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, size)
                os.fsync(fd)
            except OSError as cut:
                self._broken = f"cannot cut a failed append: {cut}"
            raise ChainUnavailableError(
                f"the chain journal cannot be written, transaction undone: {exc}"
            ) from exc
        self._mark = JournalMark(size + len(line), line)


@dataclass(frozen=True, slots=True)
class _Replayed:
    length: int
    """The byte length of the whole lines replayed."""
    untimed: bool
    """Some transaction line had no ``at`` (a journal of an older version)."""
    lines: list[bytes]
    """The whole lines replayed, each transaction's with the time the replay gave it."""
    last_line: bytes
    """The last whole line replayed, as the journal holds it."""


def _replay(transport: EmbeddedTransport, path: Path, start: int) -> _Replayed:
    """Replay the journal's whole lines from byte ``start``, each transaction at its
    recorded time."""
    if not path.exists():
        return _Replayed(0, untimed=False, lines=[], last_line=b"")
    length, untimed, last_line = 0, False, b""
    lines: list[bytes] = []
    total = path.stat().st_size - start
    with path.open("rb") as journal:
        journal.seek(start)
        for line in journal:
            if not line.endswith(b"\n"):
                break  # a write cut short by a crash: that transaction never returned
            entry = json.loads(line)
            length += len(line)
            last_line = line
            if len(lines) % REPLAY_PROGRESS_EVERY == REPLAY_PROGRESS_EVERY - 1:
                # A long replay (a journal without checkpoints) says how far it is.
                _log.info("chain_replay_progress", lines=len(lines) + 1, bytes=length, of=total)
            if "advance" in entry:
                transport.advance_time(int(entry["advance"]))
                lines.append(line)
                continue
            if "at" in entry:
                transport.set_time(int(entry["at"]) - 1)  # mined a second after the latest
            else:
                untimed = True
            sender = Signer(address=str(entry["sender"]), private_key=b"")
            if "deploy" in entry:
                transport.deploy(bytes.fromhex(entry["deploy"]), sender)
            else:
                transport.send(str(entry["to"]), bytes.fromhex(entry["data"]), sender)
            entry["at"] = transport.timestamp()
            lines.append((json.dumps(entry, separators=(",", ":")) + "\n").encode("utf-8"))
    return _Replayed(length, untimed=untimed, lines=lines, last_line=last_line)


def open_durable_embedded_chain(
    data_dir: Path,
    operator: Signer | None,
    settings: DeploySettings | None = None,
    *,
    checkpoint_every: int = CHECKPOINT_EVERY,
    logs_kept_blocks: int = LOGS_KEPT_BLOCKS,
) -> ContractChain:
    """The embedded chain of ``data_dir``: deployed, brought to its newest checkpoint, the
    journal's tail replayed, journaling on; the logs of all but the newest
    ``logs_kept_blocks`` blocks read from the checkpoints' receipts."""
    private_dir(data_dir)
    if operator is None:
        key_file = data_dir / OPERATOR_KEY_FILE
        operator = signer_from_private_key(
            read_or_create_secret(key_file, new_signer().private_key.hex())
        )
    began = time.perf_counter()
    transport = EmbeddedTransport()
    deployment = deploy_embedded(transport, operator, operator.address, settings)
    deployed, restarted_at = transport.mined_count(), transport.timestamp()
    journal_path = data_dir / JOURNAL_FILE
    checkpoints = ChainCheckpoints(data_dir, logs_kept_blocks=logs_kept_blocks)
    start = checkpoints.restore(transport, journal_path)
    replayed = _replay(transport, journal_path, start.offset)
    _log.info(
        "chain_opened",
        checkpoint_offset=start.offset,
        replayed_lines=len(replayed.lines),
        block=transport.block_number(),
        seconds=round(time.perf_counter() - began, 3),
    )
    # Time does not go back: a downtime passes on this chain as it does on a node.
    transport.set_time(max(transport.timestamp(), restarted_at))
    end, last_line = start.offset + replayed.length, replayed.last_line
    if replayed.untimed:
        # Written once with the times this replay gave (a torn last line left out).
        with journal_path.open("rb") as before:
            kept = before.read(start.offset)
        replace_private_file(journal_path, kept + b"".join(replayed.lines))
        end = len(kept) + sum(len(line) for line in replayed.lines)
        last_line = replayed.lines[-1]
    elif journal_path.exists() and journal_path.stat().st_size > end:
        os.truncate(journal_path, end)  # drop a torn last line before appending
    mark = JournalMark(end, last_line) if replayed.lines else start
    journaled = JournaledTransport(
        transport,
        open_private_append(journal_path),
        checkpoints=checkpoints,
        deployed=deployed,
        mark=mark,
        every=checkpoint_every,
    )
    if replayed.lines:
        journaled.checkpoint()  # the next restart starts here
    return ContractChain(journaled, deployment, operator)
