"""Table definitions (SQLAlchemy 2 declarative). Money and energy are BIGINT."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from wattx.store.types import UTCDateTime


class Base(DeclarativeBase):
    """The metadata every wattx table belongs to (the migrations compare against it)."""


class UserRow(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))
    wallet_address: Mapped[str | None] = mapped_column(String(42), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuthSessionRow(Base):
    """A login: the family of refresh tokens that rotate from it."""

    __tablename__ = "auth_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_reason: Mapped[str | None] = mapped_column(String(40))


class RefreshTokenRow(Base):
    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(32), index=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WalletNonceRow(Base):
    __tablename__ = "wallet_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(42))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ZoneRow(Base):
    __tablename__ = "zones"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    tariff_bands: Mapped[str] = mapped_column(Text)  # JSON [[start_hour, feed_in, retail], ...]
    position_km: Mapped[int] = mapped_column(Integer)
    neighbours: Mapped[str] = mapped_column(Text)  # JSON list of zone ids
    import_capacity_wh: Mapped[int | None] = mapped_column(BigInteger)
    export_capacity_wh: Mapped[int | None] = mapped_column(BigInteger)
    mechanism: Mapped[str] = mapped_column(String(20))
    parent: Mapped[str | None] = mapped_column(String(40), default=None)  # grid tree
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MeterRow(Base):
    __tablename__ = "meters"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    owner_id: Mapped[str] = mapped_column(String(32), index=True)
    zone_id: Mapped[str] = mapped_column(String(40))
    rated_capacity_w: Mapped[int] = mapped_column(BigInteger)
    public_key: Mapped[str] = mapped_column(String(64))  # hex of the 32-byte Ed25519 key
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BalanceRow(Base):
    """Off-chain escrow: what an account holds of one asset, free and locked."""

    __tablename__ = "balances"

    account_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    asset: Mapped[str] = mapped_column(String(10), primary_key=True)
    free: Mapped[int] = mapped_column(BigInteger)
    locked: Mapped[int] = mapped_column(BigInteger)


class OrderRow(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("owner_id", "client_order_id", name="uq_orders_owner_client_id"),
        Index("ix_orders_status_epoch", "status", "epoch_id"),
        Index("ix_orders_owner_created", "owner_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    kind: Mapped[str] = mapped_column(String(12))
    zone: Mapped[str] = mapped_column(String(40))
    epoch_id: Mapped[int] = mapped_column(BigInteger)
    qty_wh: Mapped[int] = mapped_column(BigInteger)
    limit_price: Mapped[int] = mapped_column(BigInteger)
    client_order_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seq: Mapped[int] = mapped_column(BigInteger)
    filled_wh: Mapped[int] = mapped_column(BigInteger)
    cancelled_wh: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20))
    escrow_asset: Mapped[str] = mapped_column(String(10))
    escrow_remaining: Mapped[int] = mapped_column(BigInteger)


UNSETTLED_TRADES_WHERE = "settlement_status IS NULL"
"""Trades whose epoch's batch is not in the settlement outbox: ``ix_trades_unsettled``."""


class TradeRow(Base):
    __tablename__ = "trades"
    __table_args__ = (
        # A party's trades, newest first, page by page: each side's index is in seq order.
        Index("ix_trades_buyer_seq", "buyer", "seq"),
        Index("ix_trades_seller_seq", "seller", "seq"),
        # A zone's newest trades (its public page, the reference price's last price).
        Index("ix_trades_zone_seq", "zone", "seq"),
        Index("ix_trades_epoch", "epoch_id"),
        # Partial: the trades of epochs whose batch is not in the settlement outbox yet,
        # among them every trade of an epoch not closed, which a start or a new market
        # writer looks for (not through every trade ever made).
        Index(
            "ix_trades_unsettled",
            "epoch_id",
            sqlite_where=text(UNSETTLED_TRADES_WHERE),
            postgresql_where=text(UNSETTLED_TRADES_WHERE),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    epoch_id: Mapped[int] = mapped_column(BigInteger)
    zone: Mapped[str] = mapped_column(String(40))
    buy_order_id: Mapped[str] = mapped_column(String(32))
    sell_order_id: Mapped[str] = mapped_column(String(32))
    buyer: Mapped[str] = mapped_column(String(32))
    seller: Mapped[str] = mapped_column(String(32))
    buyer_zone: Mapped[str] = mapped_column(String(40))
    seller_zone: Mapped[str] = mapped_column(String(40))
    qty_wh: Mapped[int] = mapped_column(BigInteger)
    delivered_wh: Mapped[int] = mapped_column(BigInteger)
    price: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[int] = mapped_column(BigInteger)
    buyer_fee: Mapped[int] = mapped_column(BigInteger)
    seller_fee: Mapped[int] = mapped_column(BigInteger)
    wheeling_fee: Mapped[int] = mapped_column(BigInteger)
    executed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # NULL until the epoch's batch is in the settlement outbox; then pending, then settled.
    settlement_status: Mapped[str | None] = mapped_column(String(12), default=None)
    settlement_tx_hash: Mapped[str | None] = mapped_column(String(66), default=None)


UNSETTLED_EPOCHS_WHERE = "settlement_status IS NULL AND trade_count > 0"
"""The epochs the settlement worker looks among each round: with trades, their batch not
in the outbox yet (:func:`wattx.store.settlement.epochs_without_outbox`)."""


class EpochRow(Base):
    """An epoch whose gate has closed, with what its clearing produced."""

    __tablename__ = "epochs"
    __table_args__ = (
        # Partial: it holds only the epochs still to settle, so a round reads those, not
        # every epoch ever closed.
        Index(
            "ix_epochs_unsettled",
            "id",
            sqlite_where=text(UNSETTLED_EPOCHS_WHERE),
            postgresql_where=text(UNSETTLED_EPOCHS_WHERE),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    trade_count: Mapped[int] = mapped_column(Integer)
    """The epoch's trades, continuous and cleared (migration ``0030`` counted them for rows
    written before the continuous ones counted)."""
    expired_count: Mapped[int] = mapped_column(Integer)
    clearing_prices: Mapped[str] = mapped_column(Text)  # JSON {zone: price | null}
    forced: Mapped[bool] = mapped_column()
    congestion: Mapped[str | None] = mapped_column(Text, default=None)  # JSON [link report]
    settlement_status: Mapped[str | None] = mapped_column(String(12), default=None)
    settlement_tx_hash: Mapped[str | None] = mapped_column(String(66), default=None)


class IdempotencyRow(Base):
    """The stored outcome of a mutation sent with an ``Idempotency-Key``."""

    __tablename__ = "idempotency_keys"

    owner_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MarketWriterRow(Base):
    """Who writes the market now: the fencing token of the elected market writer.

    The process holding the market's PostgreSQL advisory lock raises ``term`` when it
    becomes the writer, and every market write transaction checks it (``FOR SHARE``):
    a former writer that lost its lock can no longer commit once a new one has taken over.
    """

    __tablename__ = "market_writer"

    scope: Mapped[str] = mapped_column(String(40), primary_key=True)
    term: Mapped[int] = mapped_column(BigInteger)
    holder: Mapped[str] = mapped_column(String(200))
    since: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class MarketInboxRow(Base):
    """Order submissions a replica that is not the market writer hands to the writer.

    ``status`` is ``pending`` until the writer answers it (``done``, with the answer in
    ``response``, in the transaction that placed the orders) or the sender gives up
    (``abandoned``, never placed). The writer deletes answered and withdrawn rows once
    every sender is done with them (``wattx.store.market_writer.sweep``).
    """

    __tablename__ = "market_inbox"
    __table_args__ = (Index("ix_market_inbox_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    owner_id: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    response: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
