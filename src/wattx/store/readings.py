"""Repositories of the metering tables: readings, last-reading pointers, alerts, epoch energy."""

from __future__ import annotations

import operator
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Executable,
    bindparam,
    insert,
    literal_column,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.metering import EpochEnergy, Reading
from wattx.store.chunks import chunks
from wattx.store.copy import copies, copy_records
from wattx.store.dialect import IDS_PG, IDS_SQLITE, ids_parameter, is_postgres
from wattx.store.models_metering import (
    MeterAlertRow,
    MeterEpochEnergyRow,
    MeterLastReadingRow,
    ReadingRow,
)
from wattx.store.types import UTCDateTime
from wattx.store.upsert import dialect_insert

QUARANTINED = "quarantined"
ACCEPTED = "accepted"
REJECTED = "rejected"
"""A quarantined reading an operator refused: kept, never verified."""


async def last_reading(session: AsyncSession, meter_id: str) -> Reading | None:
    """The meter's newest stored reading (registers, sequence and time only)."""
    row = await session.get(MeterLastReadingRow, meter_id)
    if row is None:
        return None
    return Reading(seq=row.seq, ts=row.ts, import_wh=row.import_wh, export_wh=row.export_wh)


async def set_last_reading(
    session: AsyncSession, meter_id: str, reading: Reading, *, now: datetime
) -> None:
    row = await session.get(MeterLastReadingRow, meter_id)
    if row is None:
        row = MeterLastReadingRow(meter_id=meter_id)
        session.add(row)
    row.seq = reading.seq
    row.ts = reading.ts
    row.import_wh = reading.import_wh
    row.export_wh = reading.export_wh
    row.updated_at = now


# Built once, as every group of posted readings reads its meters' newest readings: the ids
# as one parameter (wattx.store.dialect.IDS_PG).
_LAST_READING_COLUMNS = select(
    MeterLastReadingRow.meter_id,
    MeterLastReadingRow.seq,
    MeterLastReadingRow.ts,
    MeterLastReadingRow.import_wh,
    MeterLastReadingRow.export_wh,
)
_LAST_READINGS_PG = _LAST_READING_COLUMNS.where(MeterLastReadingRow.meter_id == IDS_PG)
_LAST_READINGS_SQLITE = _LAST_READING_COLUMNS.where(MeterLastReadingRow.meter_id.in_(IDS_SQLITE))


async def last_readings(session: AsyncSession, meter_ids: Sequence[str]) -> dict[str, Reading]:
    """The newest stored reading of each of these meters that has one, in one query."""
    query = _LAST_READINGS_PG if is_postgres(session) else _LAST_READINGS_SQLITE
    parameters = ids_parameter(session, meter_ids)
    return {
        meter_id: Reading(seq=seq, ts=ts, import_wh=import_wh, export_wh=export_wh)
        for meter_id, seq, ts, import_wh, export_wh in await session.execute(query, parameters)
    }


async def upsert_last_readings(
    session: AsyncSession, readings: Mapping[str, Reading], *, now: datetime
) -> None:
    """Set the newest stored reading of each meter, creating pointers as needed, in one
    statement (per 1,000 meters; on PostgreSQL one statement in all)."""
    if is_postgres(session):
        await session.execute(_PG_UPSERT_LAST_READINGS, _pg_last_readings_arrays(readings, now))
        return
    rows = [
        {
            "meter_id": meter_id,
            "seq": r.seq,
            "ts": r.ts,
            "import_wh": r.import_wh,
            "export_wh": r.export_wh,
            "updated_at": now,
        }
        for meter_id, r in sorted(readings.items())
    ]
    for chunk in chunks(rows):
        statement = dialect_insert(session)(MeterLastReadingRow).values(chunk)
        excluded = statement.excluded
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["meter_id"],
                set_={
                    "seq": excluded.seq,
                    "ts": excluded.ts,
                    "import_wh": excluded.import_wh,
                    "export_wh": excluded.export_wh,
                    "updated_at": excluded.updated_at,
                },
            )
        )


# On PostgreSQL the group's rows go in as arrays (``unnest``): one statement text whatever
# their number, so it is compiled and prepared once per connection, not once per group.
_PG_LAST_READINGS_SQL = (
    "INSERT INTO meter_last_readings (meter_id, seq, ts, import_wh, export_wh, updated_at) "
    "SELECT m, s, t, i, e, CAST(:updated_at AS timestamptz) FROM unnest("
    "CAST(:last_meter_ids AS varchar[]), CAST(:seqs AS bigint[]), CAST(:ts AS timestamptz[]), "
    "CAST(:last_import_wh AS bigint[]), CAST(:last_export_wh AS bigint[])) AS u(m, s, t, i, e) "
    "ON CONFLICT (meter_id) DO UPDATE SET seq = excluded.seq, ts = excluded.ts, "
    "import_wh = excluded.import_wh, export_wh = excluded.export_wh, "
    "updated_at = excluded.updated_at"
)
_PG_EPOCH_ENERGY_SQL = (
    "INSERT INTO meter_epoch_energy (meter_id, epoch_id, import_wh, export_wh, "
    "verified_export_wh) "
    "SELECT * FROM unnest(CAST(:energy_meter_ids AS varchar[]), CAST(:epoch_ids AS bigint[]), "
    "CAST(:energy_import_wh AS bigint[]), CAST(:energy_export_wh AS bigint[]), "
    "CAST(:verified_export_wh AS bigint[])) "
    "ON CONFLICT (meter_id, epoch_id) DO UPDATE SET "
    "import_wh = meter_epoch_energy.import_wh + excluded.import_wh, "
    "export_wh = meter_epoch_energy.export_wh + excluded.export_wh, "
    "verified_export_wh = meter_epoch_energy.verified_export_wh + excluded.verified_export_wh"
)
_PG_UPSERT_LAST_READINGS = text(_PG_LAST_READINGS_SQL).bindparams(
    bindparam("updated_at", type_=UTCDateTime())
)
_PG_UPSERT_EPOCH_ENERGY = text(_PG_EPOCH_ENERGY_SQL)
# Both in one statement (the energy's as a data-modifying WITH, run to completion whether
# read or not): a group of posted readings writes them with one round trip, not two. They
# touch different tables, each key at most once, so neither sees or undoes the other.
_PG_UPSERT_ENERGY_AND_LAST_READINGS = text(
    f"WITH energy AS ({_PG_EPOCH_ENERGY_SQL}) {_PG_LAST_READINGS_SQL}"
).bindparams(bindparam("updated_at", type_=UTCDateTime()))


def _pg_last_readings_arrays(readings: Mapping[str, Reading], now: datetime) -> dict[str, Any]:
    ordered = sorted(readings.items())
    return {
        "last_meter_ids": [meter_id for meter_id, _ in ordered],
        "seqs": [r.seq for _, r in ordered],
        "ts": [r.ts for _, r in ordered],
        "last_import_wh": [r.import_wh for _, r in ordered],
        "last_export_wh": [r.export_wh for _, r in ordered],
        "updated_at": now,
    }


def _pg_epoch_energy_arrays(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {
        "energy_meter_ids": [row["meter_id"] for row in rows],
        "epoch_ids": [row["epoch_id"] for row in rows],
        "energy_import_wh": [row["import_wh"] for row in rows],
        "energy_export_wh": [row["export_wh"] for row in rows],
        "verified_export_wh": [row["verified_export_wh"] for row in rows],
    }


async def upsert_energy_and_last_readings(
    session: AsyncSession,
    energy_rows: list[dict[str, Any]],
    readings: Mapping[str, Reading],
    *,
    now: datetime,
) -> None:
    """:func:`upsert_epoch_energy` of ``energy_rows`` and :func:`upsert_last_readings` of
    ``readings``, on PostgreSQL in one statement."""
    if not energy_rows and not readings:
        return
    if is_postgres(session):
        await session.execute(
            _PG_UPSERT_ENERGY_AND_LAST_READINGS,
            _pg_epoch_energy_arrays(energy_rows) | _pg_last_readings_arrays(readings, now),
        )
        return
    if energy_rows:
        await upsert_epoch_energy(session, energy_rows)
    if readings:
        await upsert_last_readings(session, readings, now=now)


async def digests_by_seq(
    session: AsyncSession, meter_id: str, seqs: Sequence[int]
) -> dict[int, bytes]:
    """Digests of the meter's stored readings with these sequence numbers."""
    if not seqs:
        return {}
    query = select(ReadingRow.seq, ReadingRow.digest).where(
        ReadingRow.meter_id == meter_id, ReadingRow.seq.in_(seqs)
    )
    return {seq: bytes.fromhex(digest) for seq, digest in (await session.execute(query)).all()}


_READING_COLUMNS = tuple(column.name for column in ReadingRow.__table__.columns)
_reading_record = operator.itemgetter(*_READING_COLUMNS)
"""A row's values in column order, as ``COPY`` takes them."""


async def insert_readings(session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert readings given as column values, in the session's transaction, without ORM
    objects (building and flushing those was most of the cost of ingest): on PostgreSQL
    with ``COPY`` (:mod:`wattx.store.copy`; rows reach their month's partition as an
    insert's would), elsewhere as one multi-row statement."""
    if not copies(session):
        await session.execute(insert(ReadingRow), list(rows))
        return
    await copy_records(
        session, ReadingRow.__tablename__, _READING_COLUMNS, list(map(_reading_record, rows))
    )


async def insert_alerts(session: AsyncSession, rows: Sequence[MeterAlertRow]) -> None:
    session.add_all(rows)
    await session.flush()


async def add_epoch_energy(
    session: AsyncSession,
    meter_id: str,
    totals: Iterable[EpochEnergy],
    verified: Iterable[EpochEnergy],
) -> None:
    """Add interval energy to ``meter_epoch_energy``, creating rows as needed.

    ``totals`` is the energy of every new interval, ``verified`` that of the
    intervals ending in an accepted reading; only the latter's export counts
    as verified.
    """
    values = energy_by_epoch(totals, verified)
    if not values:
        return
    await upsert_epoch_energy(
        session,
        [
            {
                "meter_id": meter_id,
                "epoch_id": epoch_id,
                "import_wh": imported,
                "export_wh": exported,
                "verified_export_wh": verified_wh,
            }
            for epoch_id, (imported, exported, verified_wh) in sorted(values.items())
        ],
    )


def energy_by_epoch(
    totals: Iterable[EpochEnergy], verified: Iterable[EpochEnergy]
) -> dict[int, tuple[int, int, int]]:
    """Per epoch: (import, export, verified export) of ``totals`` and ``verified``."""
    verified_export = {e.epoch_id: e.export_wh for e in verified}
    values = {
        e.epoch_id: (e.import_wh, e.export_wh, verified_export.pop(e.epoch_id, 0)) for e in totals
    }
    for epoch_id, export_wh in verified_export.items():
        values[epoch_id] = (0, 0, export_wh)
    return values


async def upsert_epoch_energy(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Add each row's energy to its ``(meter_id, epoch_id)`` row, creating it as needed;
    one statement per 1,000 rows (on PostgreSQL one in all). A key may appear only once
    in ``rows``."""
    if is_postgres(session):
        await session.execute(_PG_UPSERT_EPOCH_ENERGY, _pg_epoch_energy_arrays(rows))
        return
    keys = ["meter_id", "epoch_id"]
    for chunk in chunks(rows):
        statement = dialect_insert(session)(MeterEpochEnergyRow).values(chunk)
        upsert: Executable = statement.on_conflict_do_update(
            index_elements=keys, set_=_accumulated(statement.excluded)
        )
        await session.execute(upsert)


def _accumulated(excluded: Any) -> dict[str, Any]:
    """The row's energy plus that of the row that could not be inserted."""
    return {
        "import_wh": MeterEpochEnergyRow.import_wh + excluded.import_wh,
        "export_wh": MeterEpochEnergyRow.export_wh + excluded.export_wh,
        "verified_export_wh": MeterEpochEnergyRow.verified_export_wh + excluded.verified_export_wh,
    }


async def readings_of_meter(
    session: AsyncSession, meter_id: str, *, limit: int, offset: int
) -> list[ReadingRow]:
    """The meter's readings, newest first."""
    query = (
        select(ReadingRow)
        .where(ReadingRow.meter_id == meter_id)
        .order_by(ReadingRow.ts.desc(), ReadingRow.seq.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(await session.scalars(query))


async def quarantined_readings(
    session: AsyncSession, *, meter_id: str | None, limit: int, offset: int
) -> list[ReadingRow]:
    """Quarantined readings of every meter (or one), most recently received first."""
    query = (
        select(ReadingRow)
        # A literal, not a parameter: PostgreSQL uses the partial index of quarantined
        # readings only for a condition it can see implies the index's own.
        .where(ReadingRow.status == literal_column(f"'{QUARANTINED}'"))
        .order_by(ReadingRow.received_at.desc(), ReadingRow.meter_id, ReadingRow.seq)
        .limit(limit)
        .offset(offset)
    )
    if meter_id is not None:
        query = query.where(ReadingRow.meter_id == meter_id)
    return list(await session.scalars(query))


async def reading_by_seq(
    session: AsyncSession, meter_id: str, seq: int, *, lock: bool = False
) -> ReadingRow | None:
    """The meter's stored reading with sequence number ``seq``; ``lock`` takes its row lock."""
    query = select(ReadingRow).where(ReadingRow.meter_id == meter_id, ReadingRow.seq == seq)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return (await session.scalars(query)).first()


async def reading_before(session: AsyncSession, meter_id: str, seq: int) -> Reading | None:
    """The meter's stored reading just before ``seq`` (any status): where the interval
    ending at ``seq`` starts. ``None`` for the meter's first reading."""
    query = (
        select(ReadingRow.seq, ReadingRow.ts, ReadingRow.import_wh, ReadingRow.export_wh)
        .where(ReadingRow.meter_id == meter_id, ReadingRow.seq < seq)
        .order_by(ReadingRow.seq.desc())
        .limit(1)
    )
    found = (await session.execute(query)).first()
    if found is None:
        return None
    previous_seq, ts, import_wh, export_wh = found
    return Reading(seq=previous_seq, ts=ts, import_wh=import_wh, export_wh=export_wh)


async def list_alerts(
    session: AsyncSession,
    *,
    meter_id: str | None,
    kind: str | None,
    since: datetime | None,
    limit: int,
    offset: int,
) -> list[MeterAlertRow]:
    """Grid-quality alerts, most recently raised first; ``since`` bounds ``raised_at``
    from below (inclusive)."""
    query = select(MeterAlertRow)
    if meter_id is not None:
        query = query.where(MeterAlertRow.meter_id == meter_id)
    if kind is not None:
        query = query.where(MeterAlertRow.kind == kind)
    if since is not None:
        query = query.where(MeterAlertRow.raised_at >= since)
    query = query.order_by(MeterAlertRow.raised_at.desc(), MeterAlertRow.id.desc())
    return list(await session.scalars(query.limit(limit).offset(offset)))


async def epoch_energy_of_meter(
    session: AsyncSession,
    meter_id: str,
    *,
    from_epoch: int | None,
    to_epoch: int | None,
    limit: int,
    offset: int,
) -> list[MeterEpochEnergyRow]:
    """The meter's per-epoch energy in ``[from_epoch, to_epoch]``, newest epoch first."""
    query = select(MeterEpochEnergyRow).where(MeterEpochEnergyRow.meter_id == meter_id)
    if from_epoch is not None:
        query = query.where(MeterEpochEnergyRow.epoch_id >= from_epoch)
    if to_epoch is not None:
        query = query.where(MeterEpochEnergyRow.epoch_id <= to_epoch)
    query = query.order_by(MeterEpochEnergyRow.epoch_id.desc()).limit(limit).offset(offset)
    return list(await session.scalars(query))


def month_of(at: datetime) -> tuple[int, int]:
    utc = at.astimezone(UTC)
    return utc.year, utc.month


def months_between(start: datetime, end: datetime) -> list[tuple[int, int]]:
    """The (year, month) of every UTC month from ``start``'s to ``end``'s, both included."""
    year, month = month_of(start)
    last = month_of(end)
    months = []
    while (year, month) <= last:
        months.append((year, month))
        year, month = year + month // 12, month % 12 + 1
    return months


def month_partition_name(year: int, month: int) -> str:
    return f"readings_p{year:04d}{month:02d}"


async def ensure_month_partition(session: AsyncSession, year: int, month: int) -> None:
    """Create the PostgreSQL partition of ``readings`` for one month if it is missing.

    Fails (and the caller's transaction with it) if the default partition
    already holds readings of that month: they stay where they are, and
    queries find them there as well.
    """
    following_year, following_month = year + month // 12, month % 12 + 1
    await session.execute(
        text(
            f"CREATE TABLE IF NOT EXISTS {month_partition_name(year, month)} "
            "PARTITION OF readings FOR VALUES "
            f"FROM ('{year:04d}-{month:02d}-01 00:00:00+00') "
            f"TO ('{following_year:04d}-{following_month:02d}-01 00:00:00+00')"
        )
    )
