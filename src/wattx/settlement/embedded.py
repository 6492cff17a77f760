"""The embedded chain: py-evm in-process (through titanoboa), all contracts deployed on start.

Each transaction is mined in its own block. Gas is what a real chain would
charge: execution gas plus the intrinsic cost (21,000 + calldata, + creation
cost for deploys), less the refund capped at a fifth (EIP-3529).
"""

from __future__ import annotations

import itertools
import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import boa
from boa.vm.py_evm import Sha3PreimageTracer, SstoreTracer
from eth.db.backends.memory import MemoryDB
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from wattx.settlement.abi import RawLog, checksummed
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.deploy import DeploySettings, deploy_contracts
from wattx.settlement.deployment import Deployment
from wattx.settlement.errors import revert_error
from wattx.settlement.keys import new_signer
from wattx.settlement.port import Signer
from wattx.settlement.transport import TxOutcome, intrinsic_gas, revert_reason

Confirm = Callable[[TxOutcome], None]
"""Called with a transaction's outcome before it is final; raising undoes it."""


@dataclass(frozen=True, slots=True)
class EmbeddedSnapshot:
    state: object
    block_number: int
    timestamp: int
    log_count: int
    mined_count: int


@dataclass(frozen=True, slots=True)
class DeployedState:
    """A new chain's state right after a deployment, for other new chains to start from."""

    nodes: Mapping[bytes, bytes]
    """The EVM database's entries (state trie nodes, storage, code) by key."""
    state_root: bytes
    blocks: int
    """Blocks the deployment mined (one transaction each, one second apart)."""
    logs: tuple[RawLog, ...]
    tx_hashes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChainState:
    """A chain's accounts, code and storage with its latest block, for a checkpoint."""

    nodes: Mapping[bytes, bytes]
    """The EVM database's entries by key."""
    state_root: bytes
    block_number: int
    timestamp: int


@dataclass(frozen=True, slots=True)
class MinedTransaction:
    """A mined transaction as the chain remembers it: its hash, block and logs."""

    tx_hash: str
    block_number: int
    logs: tuple[RawLog, ...]


class LogArchive(Protocol):
    """Where a chain's older logs are kept once its memory has let them go."""

    def logs_between(self, first_block: int, last_block: int) -> Iterator[RawLog]:
        """The logs of blocks ``first_block`` to ``last_block`` (both included), in order."""
        ...


def _block_of(log: RawLog) -> int:
    return log.block_number


_SHA3 = 0x20
_SSTORE = 0x55


def _untraced(env: boa.Env) -> boa.Env:
    """``env`` with py-evm's own SHA3 and SSTORE, without titanoboa's tracers.

    titanoboa wraps both opcodes in tracers that record every 64-byte hash preimage
    and every written slot into dicts of the environment, kept for its storage dumps
    (which nothing here reads): a service's would grow for as long as it runs. And
    each new environment wraps the opcode table that all of them share once more, so
    after n environments in a process every SHA3 and SSTORE ran through n tracers (a
    deployment took 0.33 s instead of 0.07 s after 300). This environment gets a
    table of its own, with the bare opcodes.

    The shared table gets back what it held before this environment wrapped it: its
    tracers hold the environment, so every environment a process made stayed alive,
    with its whole chain state (about 800 objects a test for the suite's in-process
    services, and every full garbage collection walked them all).
    """
    computation = env.evm.vm.state.computation_class
    # Not yet an attribute of this environment's own class: the table its base shares.
    shared = computation.opcodes
    sha3_tracer, sstore_tracer = shared[_SHA3], shared[_SSTORE]
    if isinstance(sha3_tracer, Sha3PreimageTracer) and sha3_tracer.env is env:
        shared[_SHA3] = sha3_tracer.sha3
    if isinstance(sstore_tracer, SstoreTracer) and sstore_tracer.env is env:
        shared[_SSTORE] = sstore_tracer.sstore
    opcodes = dict(shared)
    sha3 = opcodes[_SHA3]
    while isinstance(sha3, Sha3PreimageTracer):
        sha3 = sha3.sha3
    sstore = opcodes[_SSTORE]
    while isinstance(sstore, SstoreTracer):
        sstore = sstore.sstore
    opcodes[_SHA3] = sha3
    opcodes[_SSTORE] = sstore
    computation.opcodes = opcodes
    return env


class EmbeddedTransport:
    """Transactions executed directly on an in-process py-evm."""

    def __init__(self) -> None:
        self._env = _untraced(boa.Env())
        self._logs: list[RawLog] = []  # in block order
        self._tx_hashes: list[str] = []  # transaction hashes, in order
        self._known: set[str] = set()  # the same, to look one up
        self._open_snapshots = 0
        self._started_from: bytes | None = None
        # Blocks whose logs only ``_archive`` holds (none until archive_logs).
        self._archive: LogArchive | None = None
        self._archived = range(0)

    @property
    def chain_id(self) -> int:
        return int(self._env.evm.patch.chain_id)

    def _next_block(self) -> int:
        # Each transaction starts cold (EIP-2929) with the storage it finds as
        # its original values (EIP-2200), as on a real chain. py-evm's
        # lock_changes() does both but flattens the journal snapshots need, so
        # while one is open only the accessed set is cleared (a journaled
        # clear), and storage written earlier may be priced as already dirty.
        state = self._env.evm.vm.state
        account_db = state._account_db
        if self._open_snapshots:
            account_db._journal_accessed_state.clear()
        else:
            account_db.lock_changes()
            # A transaction starts with no transient storage (EIP-1153). A new store also
            # drops the old one's journal, which kept an entry for every snapshot taken in
            # it (py-evm keeps them until a persist, which transient storage never has):
            # about 570 bytes a transaction, for as long as the chain ran.
            state._transient_storage = None
        patch = self._env.evm.patch
        patch.block_number += 1
        patch.timestamp += 1
        return int(patch.block_number)

    def _outcome(
        self, computation: object, data: bytes, sender: str, *, creates: bool
    ) -> TxOutcome:
        comp = computation
        if comp.is_error:  # type: ignore[attr-defined]
            error = comp.error  # type: ignore[attr-defined]
            raw = error.args[0] if error.args and isinstance(error.args[0], bytes) else b""
            raise revert_error(revert_reason(raw))
        block = int(self._env.evm.patch.block_number)
        tx_hash = "0x" + keccak(block.to_bytes(32, "big") + bytes.fromhex(sender[2:]) + data).hex()
        used = intrinsic_gas(data, creates=creates) + comp.get_gas_used()  # type: ignore[attr-defined]
        gas_used = used - min(comp.get_gas_refund(), used // 5)  # type: ignore[attr-defined]
        logs = tuple(
            RawLog(
                address=checksummed(address),
                topics=tuple(t.to_bytes(32, "big") for t in topics),
                data=bytes(payload),
                block_number=block,
                tx_hash=tx_hash,
                log_index=i,
            )
            for i, (_, address, topics, payload) in enumerate(comp.get_raw_log_entries())  # type: ignore[attr-defined]
        )
        self._logs.extend(logs)
        self._tx_hashes.append(tx_hash)
        self._known.add(tx_hash)
        return TxOutcome(tx_hash=tx_hash, block_number=block, gas_used=gas_used, logs=logs)

    def deploy(self, code: bytes, signer: Signer, *, confirm: Confirm | None = None) -> TxOutcome:
        """Deploy ``code``; see :meth:`send` for ``confirm``."""

        def run() -> TxOutcome:
            address, computation = self._env.deploy(sender=signer.address, bytecode=code)
            outcome = self._outcome(computation, code, signer.address, creates=True)
            return TxOutcome(
                tx_hash=outcome.tx_hash,
                block_number=outcome.block_number,
                gas_used=outcome.gas_used,
                logs=outcome.logs,
                contract_address=to_checksum_address(str(address)),
            )

        return self._mined(run, confirm)

    def send(
        self, to: str, data: bytes, signer: Signer, *, confirm: Confirm | None = None
    ) -> TxOutcome:
        """Execute a transaction in a new block. ``confirm`` runs on its outcome before
        the transaction is final; if it raises, the transaction is undone (state, block,
        time, logs) as if it had never run, and the error goes to the caller."""
        return self._mined(
            lambda: self._outcome(
                self._env.execute_code(to_address=to, sender=signer.address, data=data),
                data,
                signer.address,
                creates=False,
            ),
            confirm,
        )

    def _mined(self, run: Callable[[], TxOutcome], confirm: Confirm | None) -> TxOutcome:
        patch = self._env.evm.patch
        block, timestamp = patch.block_number, patch.timestamp
        log_count, mined_count = len(self._logs), len(self._tx_hashes)
        self._next_block()
        if confirm is None:
            return run()
        state = self._env.evm.vm.state
        # Taken after _next_block so the transaction is priced as without it.
        checkpoint = state.snapshot()
        try:
            outcome = run()
            confirm(outcome)
        except BaseException:
            state.revert(checkpoint)
            patch.block_number, patch.timestamp = block, timestamp
            self._forget(log_count, mined_count)
            raise
        state.commit(checkpoint)
        return outcome

    def call(self, to: str, data: bytes) -> bytes:
        computation = self._env.execute_code(to_address=to, data=data, is_modifying=False)
        if computation.is_error:
            error = computation.error
            raw = error.args[0] if error.args and isinstance(error.args[0], bytes) else b""
            raise revert_error(revert_reason(raw))
        return bytes(computation.output)

    def logs(
        self, from_block: int, addresses: Sequence[str], to_block: int | None = None
    ) -> list[RawLog]:
        wanted = {a.lower() for a in addresses}
        last = self.block_number() if to_block is None else to_block
        start = bisect_left(self._logs, from_block, key=_block_of)
        stop = bisect_left(self._logs, last + 1, key=_block_of)
        found: Iterable[RawLog] = self._logs[start:stop]
        archived = self._archived
        if self._archive is not None and archived and from_block <= archived[-1]:
            # Memory holds the blocks before the archived ones (the deployment's) and after.
            split = bisect_left(self._logs, archived.start, key=_block_of)
            archived_logs: Iterable[RawLog] = ()
            if max(from_block, archived.start) <= min(last, archived[-1]):
                archived_logs = self._archive.logs_between(
                    max(from_block, archived.start), min(last, archived[-1])
                )
            found = itertools.chain(
                self._logs[start : min(split, stop)],
                archived_logs,
                self._logs[max(split, start) : stop],
            )
        return [log for log in found if log.address.lower() in wanted]

    def archive_logs(self, archive: LogArchive, first_block: int, last_block: int) -> None:
        """Let ``archive``, which holds them already, keep the logs of blocks ``first_block``
        to ``last_block``, and forget them here; :meth:`logs` reads them from it from then
        on. Each call continues the range of the one before (the same first block)."""
        if self._open_snapshots:
            raise RuntimeError("a chain with an open snapshot cannot archive its logs")
        if self._archived and first_block != self._archived.start:
            raise ValueError("an archive continues the blocks archived before")
        if last_block < max(first_block, self._archived.stop):
            return
        start = bisect_left(self._logs, first_block, key=_block_of)
        del self._logs[start : bisect_left(self._logs, last_block + 1, key=_block_of)]
        self._archive = archive
        self._archived = range(first_block, last_block + 1)

    @property
    def logs_in_memory(self) -> int:
        """How many logs this chain holds in memory (the others are archived)."""
        return len(self._logs)

    def block_number(self) -> int:
        return int(self._env.evm.patch.block_number)

    def transaction_known(self, tx_hash: str) -> bool:
        return tx_hash in self._known

    def timestamp(self) -> int:
        return int(self._env.evm.patch.timestamp)

    def advance_time(self, seconds: int) -> None:
        self._env.evm.patch.timestamp += seconds

    def set_time(self, timestamp: int) -> None:
        """Set the latest block's time; the next block is mined a second later. For a
        replay, which gives each transaction the time it was first mined at."""
        self._env.evm.patch.timestamp = timestamp

    def _memory(self) -> dict[bytes, bytes]:
        """The dictionary under the EVM's database (py-evm keeps a new chain in memory)."""
        memory = self._env.evm.vm.state._db.wrapped_db
        if not isinstance(memory, MemoryDB):
            raise RuntimeError(f"the embedded EVM's database is a {type(memory).__name__}")
        return memory.kv_store

    def deployed_state(self, start_block: int) -> DeployedState:
        """This chain's state, for :meth:`start_from`; ``start_block`` is where the
        deployment began. Its changes are written through to the EVM's database first
        (what a block boundary does to storage's original values, so later
        transactions are priced the same)."""
        state = self.state()
        return DeployedState(
            nodes=state.nodes,
            state_root=state.state_root,
            blocks=state.block_number - start_block,
            logs=tuple(self._logs),
            tx_hashes=tuple(self._tx_hashes),
        )

    def start_from(self, deployed: DeployedState) -> None:
        """Give this new chain (nothing mined yet) the state of ``deployed``: the same
        accounts, code, storage, blocks, logs and transaction hashes. Its clock stays its
        own, as if it had mined those blocks itself."""
        if self._tx_hashes or self._logs:
            raise RuntimeError("only a new chain can start from a deployed state")
        self._load(deployed.nodes, deployed.state_root)
        patch = self._env.evm.patch
        patch.block_number += deployed.blocks
        patch.timestamp += deployed.blocks
        self._logs.extend(deployed.logs)
        self._tx_hashes.extend(deployed.tx_hashes)
        self._known.update(deployed.tx_hashes)
        self._started_from = deployed.state_root

    @property
    def started_from(self) -> bytes | None:
        """The state root of the deployment this chain started from (:meth:`start_from`)."""
        return self._started_from

    def mined_count(self) -> int:
        """How many transactions this chain has mined (its deployment's included)."""
        return len(self._tx_hashes)

    def mined_after(self, count: int) -> list[MinedTransaction]:
        """The transactions mined after the first ``count``, in order, with their logs."""
        hashes = self._tx_hashes[count:]
        if not hashes:
            return []
        # One block per transaction, consecutive up to the latest.
        first = self.block_number() - len(hashes) + 1
        if self._archived and first <= self._archived[-1]:
            raise ValueError("the logs of those transactions are archived")
        logs: dict[int, list[RawLog]] = {}
        for log in self._logs[bisect_left(self._logs, first, key=_block_of) :]:
            logs.setdefault(log.block_number, []).append(log)
        return [
            MinedTransaction(tx_hash, first + i, tuple(logs.get(first + i, ())))
            for i, tx_hash in enumerate(hashes)
        ]

    def state(self) -> ChainState:
        """The accounts, code and storage now, written through to the EVM's database first
        (see :meth:`deployed_state`), with the latest block."""
        if self._open_snapshots:
            raise RuntimeError("a chain with an open snapshot cannot be copied")
        account_db = self._env.evm.vm.state._account_db
        account_db.persist()
        return ChainState(
            nodes=dict(self._memory()),
            state_root=account_db.state_root,
            block_number=self.block_number(),
            timestamp=self.timestamp(),
        )

    def restore(self, state: ChainState, mined: Sequence[MinedTransaction]) -> None:
        """Continue, on this chain just deployed, a chain that had the same deployment:
        its ``state`` and the transactions it ``mined`` after the deployment's."""
        if self._open_snapshots:
            raise RuntimeError("a chain with an open snapshot cannot be restored")
        self._load(state.nodes, state.state_root)
        patch = self._env.evm.patch
        patch.block_number, patch.timestamp = state.block_number, state.timestamp
        for transaction in mined:
            self._logs.extend(transaction.logs)
            self._tx_hashes.append(transaction.tx_hash)
            self._known.add(transaction.tx_hash)

    def _load(self, nodes: Mapping[bytes, bytes], state_root: bytes) -> None:
        """Put ``nodes`` in the EVM's database and make ``state_root`` its state."""
        state = self._env.evm.vm.state
        self._memory().update(nodes)
        state._account_db = state.get_account_db_class()(state._db, state_root)

    def snapshot(self) -> EmbeddedSnapshot:
        self._open_snapshots += 1
        return EmbeddedSnapshot(
            state=self._env.evm.snapshot(),
            block_number=self.block_number(),
            timestamp=self.timestamp(),
            log_count=len(self._logs),
            mined_count=len(self._tx_hashes),
        )

    def revert(self, snapshot: EmbeddedSnapshot) -> None:
        self._env.evm.revert(snapshot.state)
        self._open_snapshots -= 1
        self._env.evm.patch.block_number = snapshot.block_number
        self._env.evm.patch.timestamp = snapshot.timestamp
        self._forget(snapshot.log_count, snapshot.mined_count)

    def _forget(self, log_count: int, mined_count: int) -> None:
        """Drop the logs and transactions after the first ``log_count`` and ``mined_count``."""
        del self._logs[log_count:]
        self._known.difference_update(self._tx_hashes[mined_count:])
        del self._tx_hashes[mined_count:]


_DEPLOYED_KEPT = 8
_deployed: OrderedDict[tuple[object, ...], tuple[Deployment, DeployedState]] = OrderedDict()
_deployed_lock = threading.Lock()  # services open their chains in worker threads


def deploy_embedded(
    transport: EmbeddedTransport,
    operator: Signer,
    fee_account: str,
    settings: DeploySettings | None = None,
) -> Deployment:
    """:func:`deploy_contracts` onto a new embedded chain, run once per process for the
    same operator, fee account and settings.

    A deployment reads no clock and nothing random: the same inputs give the same
    addresses, storage, blocks, logs and transaction hashes on every new chain. So the
    first one runs on a chain of its own and its state is kept (the last
    ``_DEPLOYED_KEPT`` sets of inputs); every chain, that first one's too, starts from a
    copy (about 1 ms; the deployment about 30: the governed parameters' definitions are
    most of it). ``tests/settlement/test_embedded_deployed.py`` checks that a copy and a
    deployment are the same chain.
    """
    settings = settings or DeploySettings()
    key = (
        operator.address.lower(),
        fee_account.lower(),
        settings.voting_period_seconds,
        settings.timelock_seconds,
        settings.quorum_wh,
        tuple((p.name, p.initial, p.maximum) for p in settings.defined()),
    )
    with _deployed_lock:
        kept = _deployed.get(key)
        if kept is not None:
            _deployed.move_to_end(key)
    if kept is None:
        # Outside the lock: two threads may both deploy the same; both results are equal.
        first = EmbeddedTransport()
        deployment = deploy_contracts(first, operator, fee_account, settings)
        kept = (deployment, first.deployed_state(deployment.block_number))
        with _deployed_lock:
            _deployed[key] = kept
            if len(_deployed) > _DEPLOYED_KEPT:
                _deployed.popitem(last=False)
    deployment, deployed = kept
    transport.start_from(deployed)
    return deployment


class EmbeddedChain(ContractChain):
    """The default chain: in-process, deploys every contract when created."""

    def __init__(
        self,
        operator: Signer | None = None,
        fee_account: str | None = None,
        settings: DeploySettings | None = None,
    ) -> None:
        operator = operator or new_signer()
        transport = EmbeddedTransport()
        deployment = deploy_embedded(transport, operator, fee_account or operator.address, settings)
        super().__init__(transport, deployment, operator)
        self._embedded = transport

    def snapshot(self) -> EmbeddedSnapshot:
        """Remember the whole chain state (for tests and what-if runs)."""
        return self._embedded.snapshot()

    def revert(self, snapshot: EmbeddedSnapshot) -> None:
        """Return to a snapshot; snapshots must be reverted newest first."""
        self._embedded.revert(snapshot)
