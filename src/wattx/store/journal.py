"""Repository of the balance journal and the tariff history (see ``models_statements``)."""

from __future__ import annotations

import operator
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.store.bulk import insert_many
from wattx.store.models import MeterRow, TradeRow
from wattx.store.models_metering import MeterEpochEnergyRow
from wattx.store.models_statements import LedgerEntryRow, ZoneTariffRow


def record(session: AsyncSession, columns: dict[str, Any]) -> None:
    """Journal one change made by :func:`entry` (nothing for zero)."""
    if columns["amount"]:
        session.add(LedgerEntryRow(**columns))


def entry(
    account_id: str,
    asset: str,
    amount: int,
    *,
    kind: str,
    at: datetime,
    ref: str | None = None,
) -> dict[str, Any]:
    """The columns of one journal entry: a change of ``account_id``'s holding of ``asset``,
    for :func:`record` or :func:`record_many`."""
    return {
        "account_id": account_id,
        "asset": asset,
        "amount": amount,
        "kind": kind,
        "ref": ref,
        "at": at,
    }


async def record_many(session: AsyncSession, entries: Sequence[dict[str, Any]]) -> None:
    """Journal many changes (made by :func:`entry`) in one round trip, without ORM objects
    (:func:`wattx.store.bulk.insert_many`); entries of zero are left out, as :func:`record`
    leaves them out."""
    kept = [_entry_record(columns) for columns in entries if columns["amount"]]
    await insert_many(session, _TABLE, _ENTRY_COLUMNS, kept)


_TABLE: Table = LedgerEntryRow.__table__  # type: ignore[assignment]
_ENTRY_COLUMNS = ("account_id", "asset", "amount", "kind", "ref", "at")
"""The columns :func:`entry` gives, in its order."""
_entry_record = operator.itemgetter(*_ENTRY_COLUMNS)


async def entries(
    session: AsyncSession, account_id: str, asset: str, *, since: datetime, until: datetime
) -> list[LedgerEntryRow]:
    """The account's entries with ``since <= at < until``, oldest first."""
    query = (
        select(LedgerEntryRow)
        .where(
            LedgerEntryRow.account_id == account_id,
            LedgerEntryRow.asset == asset,
            LedgerEntryRow.at >= since,
            LedgerEntryRow.at < until,
        )
        .order_by(LedgerEntryRow.at, LedgerEntryRow.id)
    )
    return list(await session.scalars(query))


async def holding_before(
    session: AsyncSession, account_id: str, asset: str, moment: datetime
) -> int:
    """The sum of the account's entries before ``moment``."""
    query = select(func.coalesce(func.sum(LedgerEntryRow.amount), 0)).where(
        LedgerEntryRow.account_id == account_id,
        LedgerEntryRow.asset == asset,
        LedgerEntryRow.at < moment,
    )
    return int((await session.execute(query)).scalar_one())


async def first_entry_at(session: AsyncSession, account_id: str) -> datetime | None:
    query = select(func.min(LedgerEntryRow.at)).where(LedgerEntryRow.account_id == account_id)
    found: datetime | None = (await session.execute(query)).scalar_one()
    return found


def add_tariff(session: AsyncSession, zone_id: str, effective_from: datetime, bands: str) -> None:
    session.add(ZoneTariffRow(zone_id=zone_id, effective_from=effective_from, bands=bands))


async def tariff_history(session: AsyncSession) -> list[ZoneTariffRow]:
    """Every zone's tariffs, oldest first."""
    query = select(ZoneTariffRow).order_by(
        ZoneTariffRow.zone_id, ZoneTariffRow.effective_from, ZoneTariffRow.id
    )
    return list(await session.scalars(query))


async def trades_of(
    session: AsyncSession, user_id: str, *, from_epoch: int, to_epoch: int
) -> list[TradeRow]:
    """The user's trades (either side) delivered in ``from_epoch <= epoch < to_epoch``."""
    query = (
        select(TradeRow)
        .where(
            or_(TradeRow.buyer == user_id, TradeRow.seller == user_id),
            TradeRow.epoch_id >= from_epoch,
            TradeRow.epoch_id < to_epoch,
        )
        .order_by(TradeRow.seq)
    )
    return list(await session.scalars(query))


async def metered_energy(
    session: AsyncSession, owner_id: str, *, from_epoch: int, to_epoch: int
) -> tuple[int, int]:
    """``(import_wh, verified_export_wh)`` of the owner's meters over the epochs
    ``from_epoch <= epoch < to_epoch``, summed by the database (a year is 35 040
    epochs per meter: only the two totals come back)."""
    query = (
        select(
            func.coalesce(func.sum(MeterEpochEnergyRow.import_wh), 0),
            func.coalesce(func.sum(MeterEpochEnergyRow.verified_export_wh), 0),
        )
        .join(MeterRow, MeterRow.id == MeterEpochEnergyRow.meter_id)
        .where(
            MeterRow.owner_id == owner_id,
            MeterEpochEnergyRow.epoch_id >= from_epoch,
            MeterEpochEnergyRow.epoch_id < to_epoch,
        )
    )
    imported, exported = (await session.execute(query)).one()
    return int(imported), int(exported)
