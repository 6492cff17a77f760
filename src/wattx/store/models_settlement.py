"""Tables of the chain side of the service: custodial accounts, the settlement outbox,
mints, indexed contract events. Money and energy are BIGINT (micro-units, Wh)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from wattx.store.models import Base
from wattx.store.types import UTCDateTime


class ChainAccountRow(Base):
    """A participant's chain address; ``key_ciphertext`` is the Keyring token of a
    custodial key (the service signs for the participant)."""

    __tablename__ = "chain_accounts"

    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    address: Mapped[str] = mapped_column(String(42), unique=True)
    # None for a self-custody account: the participant holds the key.
    key_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    custody: Mapped[str] = mapped_column(
        String(10), default="custodial", server_default="custodial"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChainRegistrationRow(Base):
    """A record the chain Registry holds (``kind`` participant, zone or meter), so the
    service admits each only once."""

    __tablename__ = "chain_registrations"

    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    tx_hash: Mapped[str] = mapped_column(String(66))


class SettlementOutboxRow(Base):
    """One epoch's settlement batch: written before it is sent, confirmed with the tx hash."""

    __tablename__ = "settlement_outbox"
    __table_args__ = (
        Index("ix_settlement_outbox_status", "status", "next_attempt_at"),
        # The newest confirmed settlement, which every chain-worker round asks the chain
        # about (has it lost history?): read from the index's end, not found among all.
        Index("ix_settlement_outbox_newest", "status", "block_number", "epoch_id"),
    )

    epoch_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    status: Mapped[str] = mapped_column(String(12))
    merkle_root: Mapped[str] = mapped_column(String(66))
    trade_count: Mapped[int] = mapped_column(Integer)
    payload: Mapped[str] = mapped_column(Text)  # JSON: deltas and fee totals
    volume_wh: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[int] = mapped_column(BigInteger)
    fees: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    gas_used: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ChainMintRow(Base):
    """Energy tokens minted to a meter's owner for an epoch."""

    __tablename__ = "chain_mints"
    __table_args__ = (UniqueConstraint("meter_id", "epoch_id", name="uq_chain_mints_meter_epoch"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    meter_id: Mapped[str] = mapped_column(String(32))
    epoch_id: Mapped[int] = mapped_column(BigInteger)
    owner_id: Mapped[str] = mapped_column(String(32), index=True)
    address: Mapped[str] = mapped_column(String(42))
    wh: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The mint intent (``mint_intents.id``) the mint was sent and recorded under;
    # NULL for mints recorded before intents existed.
    intent_id: Mapped[str | None] = mapped_column(String(66), default=None)


class LedgerTotalRow(Base):
    """A running total of the public ledger, added to in the transaction that records what
    it sums, so that the overview reads one row instead of a history that grows with every
    meter and epoch (:data:`wattx.store.settlement.MINTED_WH`: the Wh of every mint; the
    confirmed settlements' epochs, volume, value and fees,
    :func:`wattx.store.settlement.settled_totals`)."""

    __tablename__ = "ledger_totals"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)


class MintIntentRow(Base):
    """One oracle batch of the mint outbox: which meters, how many Wh, which period and
    where each meter's watermark moves, written before the batch is sent; the oracle
    mints its id (``MeterOracle.submit_batch``) at most once."""

    __tablename__ = "mint_intents"
    # The newest confirmed intent, asked about every chain-worker round like the newest
    # settlement; its prefix finds the pending intent.
    __table_args__ = (Index("ix_mint_intents_newest", "status", "block_number", "id"),)

    id: Mapped[str] = mapped_column(String(66), primary_key=True)  # 0x + 32 bytes, random
    period: Mapped[int] = mapped_column(BigInteger)  # the epoch minted through
    status: Mapped[str] = mapped_column(String(12))  # pending, confirmed, failed
    # 1 while pending, NULL otherwise: the unique index allows one pending intent.
    pending_slot: Mapped[int | None] = mapped_column(Integer, unique=True)
    # JSON list of [meter_id, owner_id, address, wh, last_mint_epoch, carried_wh]
    payload: Mapped[str] = mapped_column(Text)
    total_wh: Mapped[int] = mapped_column(BigInteger)
    # Chain head when written: the batch's events are at or after it.
    start_block: Mapped[int] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class MintWatermarkRow(Base):
    """Where a meter's minting stands (:class:`wattx.metering.minting.MintWatermark`)."""

    __tablename__ = "mint_watermarks"

    meter_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_mint_epoch: Mapped[int] = mapped_column(BigInteger)
    carried_wh: Mapped[int] = mapped_column(BigInteger)


class RetirementRow(Base):
    """Energy tokens a participant burned against their metered consumption."""

    __tablename__ = "token_retirements"
    # The pending retirements every chain-worker round looks at, not every one ever made.
    __table_args__ = (Index("ix_token_retirements_status", "status", "created_at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    user_id: Mapped[str] = mapped_column(String(32), index=True)
    wh: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12))  # pending, confirmed
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChainEventRow(Base):
    """A contract event read back from the chain by the indexer."""

    __tablename__ = "chain_events"
    __table_args__ = (
        UniqueConstraint("tx_hash", "log_index", name="uq_chain_events_tx_log"),
        Index("ix_chain_events_name_block", "name", "block_number"),
        # The public ledger's pages, newest first.
        Index("ix_chain_events_block_log", "block_number", "log_index"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    block_number: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(Integer)
    contract: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(60))
    args: Mapped[str] = mapped_column(Text)  # JSON, integers as JSON numbers, bytes as 0x hex


class IndexerProgressRow(Base):
    """The next block the indexer reads."""

    __tablename__ = "indexer_progress"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    next_block: Mapped[int] = mapped_column(BigInteger)
