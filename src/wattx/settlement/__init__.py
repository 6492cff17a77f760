"""Settlement: epoch batches, the chain port, its two adapters and the Vyper contracts.

The pure parts (``batch``, ``leaves``, ``merkle``) do no I/O. The adapters
(:class:`EmbeddedChain`, :class:`JsonRpcChain`) are imported from their own
modules so that using a batch does not load the EVM or web3.
"""

from wattx.settlement.batch import AccountDelta, AddressBook, EpochBatch, build_epoch_batch
from wattx.settlement.leaves import LEAF_TYPES, TradeLeaf, trade_leaf
from wattx.settlement.merkle import MerkleTree, verify_proof
from wattx.settlement.port import (
    Asset,
    Balances,
    ChainEvent,
    ChainPort,
    MeterMint,
    ParticipantRole,
    RecordStatus,
    Signer,
    TxResult,
)

__all__ = [
    "LEAF_TYPES",
    "AccountDelta",
    "AddressBook",
    "Asset",
    "Balances",
    "ChainEvent",
    "ChainPort",
    "EpochBatch",
    "MerkleTree",
    "MeterMint",
    "ParticipantRole",
    "RecordStatus",
    "Signer",
    "TradeLeaf",
    "TxResult",
    "build_epoch_batch",
    "trade_leaf",
    "verify_proof",
]
