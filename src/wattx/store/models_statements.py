"""The balance journal and the tariff history: what monthly statements are made of.

Every change of an account's holding (free plus locked) of credit or energy is
one journal row, written in the transaction that makes the change; escrow
moves between free and locked change nothing and write nothing. Tariffs are
kept with the moment they took effect, so an interval is always priced at the
tariff in force then. Both tables are only ever inserted into.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from wattx.store.models import Base
from wattx.store.types import UTCDateTime


class LedgerEntryRow(Base):
    """One change of an account's holding of one asset (micro-units or Wh, signed)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_account_at", "account_id", "at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    account_id: Mapped[str] = mapped_column(String(32))
    asset: Mapped[str] = mapped_column(String(10))
    amount: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(24))
    ref: Mapped[str | None] = mapped_column(String(66))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class ZoneTariffRow(Base):
    """A zone's tariff from ``effective_from`` until the zone's next row."""

    __tablename__ = "zone_tariffs"
    __table_args__ = (Index("ix_zone_tariffs_zone_from", "zone_id", "effective_from"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    zone_id: Mapped[str] = mapped_column(String(40))
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime())
    bands: Mapped[str] = mapped_column(Text)  # JSON [[start_hour, feed_in, retail], ...]
