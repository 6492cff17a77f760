"""Meter readings in the live service: ingest, store, and read back.

:meth:`MeteringService.ingest` is the one way readings enter wattx, whether
they come over HTTP or MQTT: parse, validate against the stored state
(:func:`wattx.metering.validate_batch`), store, in one write transaction that
holds the meter's row lock, so two batches of one meter never validate
against the same last reading. Events are published after the commit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.bus.events import Event, EventType
from wattx.bus.port import EventBus
from wattx.domain.epochs import EpochClock, EpochSchedule
from wattx.domain.errors import ConflictError, DomainError, NotFoundError
from wattx.metering import (
    MeterIdMismatchError,
    MeterInfo,
    QuarantinedReading,
    Reading,
    ReadingAlert,
    ReadingBatch,
    RegisterSegment,
    ValidationPolicy,
    ValidationVerdict,
    decode_reading_batch,
    epoch_energies,
    parse_reading_batch,
    reading_digest,
    validate_batch,
)
from wattx.services.errors import MeterNotFoundError
from wattx.services.meters import MeterStatus
from wattx.services.principal import Principal
from wattx.store import meters as meter_repo
from wattx.store import readings as repo
from wattx.store.db import Database
from wattx.store.models import MeterRow
from wattx.store.models_metering import MeterAlertRow, MeterEpochEnergyRow, ReadingRow

_log = logging.getLogger(__name__)


class ReadingNotFoundError(NotFoundError):
    code = "reading_not_found"
    title = "Reading not found"


class ReadingNotQuarantinedError(ConflictError):
    code = "reading_not_quarantined"
    title = "Only a quarantined reading can be reviewed"


class ReviewDecision(StrEnum):
    """An operator's decision on a quarantined reading."""

    RELEASE = "release"
    """The reading is genuine: it becomes accepted and its interval's export verified."""
    REJECT = "reject"
    """The reading stays stored, marked rejected; its interval is never verified."""


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What became of an accepted batch. ``last_seq`` is the meter's newest stored reading."""

    meter_id: str
    zone_id: str
    accepted: int
    duplicates: int
    quarantined: int
    alerts: tuple[ReadingAlert, ...]
    last_seq: int | None


class MeteringService:
    """Ingestion of signed reading batches and the views of what was stored."""

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        clock: EpochClock,
        *,
        schedule: EpochSchedule,
        policy: ValidationPolicy | None = None,
    ) -> None:
        self._db = db
        self._bus = bus
        self._clock = clock
        self._schedule = schedule
        self._policy = policy or ValidationPolicy()
        # Months whose readings partition is known to exist (PostgreSQL only).
        self._partitioned_months: set[tuple[int, int]] = set()

    @property
    def policy(self) -> ValidationPolicy:
        return self._policy

    async def ingest(
        self,
        batch_document: bytes | str | Mapping[str, Any],
        *,
        via: str,
        expected_meter_id: str | None = None,
    ) -> IngestResult:
        """Validate and store one batch; raise the ``DomainError`` of the rule it breaks.

        ``batch_document`` is the JSON text of a batch or its decoded value;
        ``via`` names the channel (``http``, ``mqtt``) and is stored with
        each reading. Exact resends are acknowledged as duplicates and not
        stored again. ``expected_meter_id`` is the meter the channel names
        (URL path, MQTT topic); a batch of another meter is refused.
        """
        owner: list[str] = []
        meter_id: str | None = None
        try:
            batch = _parse(batch_document)
            meter_id = batch.meter_id
            if expected_meter_id is not None and expected_meter_id != meter_id:
                raise MeterIdMismatchError(
                    f"the batch is for meter {meter_id!r}, not {expected_meter_id!r}",
                    meter_id=meter_id,
                    expected=expected_meter_id,
                )
            await self._ensure_partitions()
            result, verdict = await self._validate_and_store(batch, via=via, owner=owner)
        except DomainError as exc:
            await self._publish_rejection(exc, meter_id, owner)
            raise
        await self._publish_outcome(result, verdict, owner[0])
        return result

    async def ingest_many(
        self, documents: Sequence[bytes | str | Mapping[str, Any]], *, via: str
    ) -> list[IngestResult | DomainError]:
        """Validate and store many batches (of any meters) in one write transaction.

        Each batch is judged on its own, exactly as :meth:`ingest` would, in the
        order given: a refused batch gets its ``DomainError`` in the result list
        and changes nothing, and a later batch of the same meter sees what an
        earlier one stored. Meters are locked in id order, the order every
        multi-meter writer uses, so two such writers cannot deadlock. One
        transaction instead of one per batch is what a data concentrator
        posting a whole feeder each interval needs. A storage failure fails the
        whole call and stores nothing.
        """
        parsed: list[ReadingBatch | DomainError] = []
        for document in documents:
            try:
                parsed.append(_parse(document))
            except DomainError as exc:
                parsed.append(exc)
        await self._ensure_partitions()
        order = sorted(range(len(parsed)), key=lambda i: _meter_of(parsed[i]))
        outcomes: dict[int, tuple[IngestResult, ValidationVerdict, str] | DomainError] = {}
        owners: dict[int, list[str]] = {}
        now = self._clock.now()
        async with self._db.write() as session:
            for index in order:
                item = parsed[index]
                if isinstance(item, DomainError):
                    outcomes[index] = item
                    continue
                owner: list[str] = []
                owners[index] = owner
                try:
                    result, verdict = await self._validate_and_store_in(
                        session, item, via=via, owner=owner, now=now
                    )
                except DomainError as exc:
                    outcomes[index] = exc
                else:
                    outcomes[index] = (result, verdict, owner[0])
        answers: list[IngestResult | DomainError] = []
        for index, item in enumerate(parsed):
            outcome = outcomes[index]
            if isinstance(outcome, DomainError):
                meter_id = item.meter_id if isinstance(item, ReadingBatch) else None
                await self._publish_rejection(outcome, meter_id, owners.get(index, []))
                answers.append(outcome)
            else:
                result, verdict, owner_id = outcome
                await self._publish_outcome(result, verdict, owner_id)
                answers.append(result)
        return answers

    async def _validate_and_store(
        self, batch: ReadingBatch, *, via: str, owner: list[str]
    ) -> tuple[IngestResult, ValidationVerdict]:
        now = self._clock.now()
        async with self._db.write() as session:
            return await self._validate_and_store_in(session, batch, via=via, owner=owner, now=now)

    async def _validate_and_store_in(
        self,
        session: AsyncSession,
        batch: ReadingBatch,
        *,
        via: str,
        owner: list[str],
        now: datetime,
    ) -> tuple[IngestResult, ValidationVerdict]:
        meter_row = await meter_repo.meter_by_id(session, batch.meter_id, lock=self._db.locks_rows)
        if meter_row is not None:
            owner.append(meter_row.owner_id)
        last = await repo.last_reading(session, batch.meter_id)
        stored = await repo.digests_by_seq(
            session,
            batch.meter_id,
            [r.seq for r in batch.readings if last is not None and r.seq <= last.seq],
        )
        verdict = validate_batch(
            batch,
            meter=_meter_info(meter_row),
            last_reading=last,
            stored_digests=stored,
            now=now,
            policy=self._policy,
        )
        assert meter_row is not None  # validate_batch refuses unknown meters
        await self._store(session, batch.meter_id, verdict, via=via, now=now)
        if verdict.last_reading is not None and verdict.last_reading != last:
            await repo.set_last_reading(session, batch.meter_id, verdict.last_reading, now=now)
        result = IngestResult(
            meter_id=batch.meter_id,
            zone_id=meter_row.zone_id,
            accepted=len(verdict.accepted),
            duplicates=len(verdict.duplicates),
            quarantined=len(verdict.quarantined),
            alerts=verdict.alerts,
            last_seq=None if verdict.last_reading is None else verdict.last_reading.seq,
        )
        return result, verdict

    async def _store(
        self,
        session: AsyncSession,
        meter_id: str,
        verdict: ValidationVerdict,
        *,
        via: str,
        now: datetime,
    ) -> None:
        rows = [_reading_row(meter_id, r, None, via=via, now=now) for r in verdict.accepted]
        rows += [
            _reading_row(meter_id, q.reading, q, via=via, now=now) for q in verdict.quarantined
        ]
        if rows:
            await repo.insert_readings(session, rows)
        if verdict.alerts:
            times = {
                r.seq: r.ts for r in (*verdict.accepted, *(q.reading for q in verdict.quarantined))
            }
            await repo.insert_alerts(
                session,
                [
                    MeterAlertRow(
                        meter_id=meter_id,
                        seq=alert.seq,
                        reading_ts=times[alert.seq],
                        kind=alert.kind.value,
                        value=alert.value,
                        low=alert.low,
                        high=alert.high,
                        raised_at=now,
                    )
                    for alert in verdict.alerts
                ],
            )
        segments = [*verdict.verified_segments, *(q.segment for q in verdict.quarantined)]
        await repo.add_epoch_energy(
            session,
            meter_id,
            epoch_energies(segments, self._schedule),
            epoch_energies(verdict.verified_segments, self._schedule),
        )

    async def start(self) -> None:
        """Create the readings partitions the retention window needs (PostgreSQL only)."""
        await self._ensure_partitions()

    async def _ensure_partitions(self) -> None:
        """On PostgreSQL, create the month partitions of the retention window and the next month.

        The months follow from the service clock alone, never from a batch: a
        batch can only be stored if its readings lie in the retention window
        (older ones and those ahead of the clock are refused), so what a caller
        sends cannot make the service create a table. The partitions are made
        at start and, when the clock enters a new month, by the next ingest,
        each in its own short transaction before the ingest transaction: DDL
        takes a lock on the parent table, which should not be held while
        readings are validated. A month whose rows already sit in the default
        partition cannot get its own; it stays in the default one.
        """
        if self._db.is_sqlite:
            return
        now = self._clock.now()
        earliest = now - timedelta(seconds=self._policy.retention_s)
        now_year, now_month = repo.month_of(now)
        wanted = set(repo.months_between(earliest, now))
        wanted.add((now_year + now_month // 12, now_month % 12 + 1))
        for year, month in sorted(wanted - self._partitioned_months):
            try:
                async with self._db.write() as session:
                    await repo.ensure_month_partition(session, year, month)
            except DBAPIError as exc:
                _log.warning(
                    "readings partition %s not created: %s",
                    repo.month_partition_name(year, month),
                    exc.orig,
                )
            self._partitioned_months.add((year, month))

    async def _publish_outcome(
        self, result: IngestResult, verdict: ValidationVerdict, owner_id: str
    ) -> None:
        audience = frozenset({owner_id})
        await self._bus.publish(
            Event(
                EventType.READING_ACCEPTED,
                {
                    "meter_id": result.meter_id,
                    "zone": result.zone_id,
                    "accepted": result.accepted,
                    "duplicates": result.duplicates,
                    "quarantined": result.quarantined,
                    "quarantine_reasons": sorted({q.reason.value for q in verdict.quarantined}),
                    "last_seq": result.last_seq,
                },
                audience=audience,
            )
        )
        for alert in result.alerts:
            await self._bus.publish(
                Event(
                    EventType.DEVICE_ALERT,
                    {
                        "meter_id": result.meter_id,
                        "seq": alert.seq,
                        "kind": alert.kind.value,
                        "value": alert.value,
                        "low": alert.low,
                        "high": alert.high,
                    },
                    audience=audience,
                )
            )

    async def _publish_rejection(
        self, error: DomainError, meter_id: str | None, owner: list[str]
    ) -> None:
        # Without a known owner only operators and auditors see the rejection.
        await self._bus.publish(
            Event(
                EventType.READING_REJECTED,
                {"meter_id": meter_id, "code": error.code, "detail": str(error)},
                audience=frozenset(owner),
            )
        )

    async def readings(
        self, principal: Principal, meter_id: str, *, limit: int, offset: int
    ) -> list[ReadingRow]:
        """The meter's stored readings, newest first: its owner's, or any for oversight."""
        async with self._db.read() as session:
            await _visible_meter(session, principal, meter_id)
            return await repo.readings_of_meter(session, meter_id, limit=limit, offset=offset)

    async def quarantine(
        self, *, meter_id: str | None, limit: int, offset: int
    ) -> list[ReadingRow]:
        """Quarantined readings for operator review, most recently received first."""
        async with self._db.read() as session:
            return await repo.quarantined_readings(
                session, meter_id=meter_id, limit=limit, offset=offset
            )

    async def review(
        self, principal: Principal, meter_id: str, seq: int, decision: ReviewDecision
    ) -> ReadingRow:
        """Release or reject a quarantined reading, once; publish ``reading.reviewed``.

        Ingestion already added the energy of the reading's interval (from the
        meter's previous stored reading to this one) to the epochs' ``import_wh``
        and ``export_wh``, which count every stored interval. Releasing adds the
        same interval's export to ``verified_export_wh``, split over epochs as
        ingestion splits it, which is what accepting the reading would have
        added; rejecting adds nothing. The status check and the energy change
        happen under the reading's row lock in one transaction, so a reading is
        released at most once.
        """
        now = self._clock.now()
        async with self._db.write() as session:
            row = await repo.reading_by_seq(session, meter_id, seq, lock=self._db.locks_rows)
            if row is None:
                raise ReadingNotFoundError("no such reading", meter_id=meter_id, seq=seq)
            if row.status != repo.QUARANTINED:
                raise ReadingNotQuarantinedError(
                    f"reading {seq} of meter {meter_id} is {row.status}, not quarantined",
                    meter_id=meter_id,
                    seq=seq,
                    status=row.status,
                )
            if decision is ReviewDecision.RELEASE:
                previous = await repo.reading_before(session, meter_id, seq)
                # Without a predecessor the reading is the meter's baseline and
                # ends no interval, so there is no energy to verify.
                if previous is not None:
                    segment = RegisterSegment.between(previous, _reading_of(row))
                    await repo.add_epoch_energy(
                        session, meter_id, (), epoch_energies([segment], self._schedule)
                    )
                row.status = repo.ACCEPTED
            else:
                row.status = repo.REJECTED
            row.reviewed_by = principal.user_id
            row.reviewed_at = now
            meter_row = await meter_repo.meter_by_id(session, meter_id)
        await self._bus.publish(
            Event(
                EventType.READING_REVIEWED,
                {
                    "meter_id": meter_id,
                    "seq": seq,
                    "decision": decision.value,
                    "status": row.status,
                    "quarantine_reason": row.quarantine_reason,
                    "reviewed_by": principal.user_id,
                },
                audience=frozenset({meter_row.owner_id}) if meter_row else frozenset(),
            )
        )
        return row

    async def alerts(
        self,
        *,
        meter_id: str | None,
        kind: str | None,
        since: datetime | None,
        limit: int,
        offset: int,
    ) -> list[MeterAlertRow]:
        """Grid-quality alerts of every meter (or one), most recently raised first."""
        async with self._db.read() as session:
            return await repo.list_alerts(
                session, meter_id=meter_id, kind=kind, since=since, limit=limit, offset=offset
            )

    async def epoch_energy(
        self,
        principal: Principal,
        meter_id: str,
        *,
        from_epoch: int | None,
        to_epoch: int | None,
        limit: int,
        offset: int,
    ) -> list[MeterEpochEnergyRow]:
        """The meter's energy per delivery epoch, newest epoch first."""
        async with self._db.read() as session:
            await _visible_meter(session, principal, meter_id)
            return await repo.epoch_energy_of_meter(
                session,
                meter_id,
                from_epoch=from_epoch,
                to_epoch=to_epoch,
                limit=limit,
                offset=offset,
            )


def _meter_of(item: ReadingBatch | DomainError) -> str:
    # Refused documents sort first; they take no lock.
    return item.meter_id if isinstance(item, ReadingBatch) else ""


def _parse(document: bytes | str | Mapping[str, Any]) -> ReadingBatch:
    if isinstance(document, bytes | str):
        return decode_reading_batch(document)
    return parse_reading_batch(dict(document))


def _meter_info(row: MeterRow | None) -> MeterInfo | None:
    if row is None:
        return None
    return MeterInfo(
        id=row.id,
        owner=row.owner_id,
        zone=row.zone_id,
        active=row.status == MeterStatus.ACTIVE.value,
        rated_capacity_w=row.rated_capacity_w,
        public_key=bytes.fromhex(row.public_key),
    )


def _reading_row(
    meter_id: str,
    reading: Reading,
    quarantined: QuarantinedReading | None,
    *,
    via: str,
    now: datetime,
) -> dict[str, Any]:
    """The column values of one ``readings`` row (inserted in bulk, without ORM objects)."""
    return {
        "meter_id": meter_id,
        "seq": reading.seq,
        "ts": reading.ts,
        "import_wh": reading.import_wh,
        "export_wh": reading.export_wh,
        "power_w": reading.power_w,
        "voltage_mv": reading.voltage_mv,
        "frequency_millihz": reading.frequency_millihz,
        "soc_permille": reading.soc_permille,
        "digest": reading_digest(reading).hex(),
        "status": repo.ACCEPTED if quarantined is None else repo.QUARANTINED,
        "quarantine_reason": None if quarantined is None else quarantined.reason.value,
        "quarantine_detail": None if quarantined is None else quarantined.detail,
        "via": via,
        "received_at": now,
        "reviewed_by": None,
        "reviewed_at": None,
    }


def _reading_of(row: ReadingRow) -> Reading:
    return Reading(seq=row.seq, ts=row.ts, import_wh=row.import_wh, export_wh=row.export_wh)


async def _visible_meter(session: AsyncSession, principal: Principal, meter_id: str) -> MeterRow:
    row = await meter_repo.meter_by_id(session, meter_id)
    # Someone else's meter is reported as absent, not as forbidden.
    if row is None or not (principal.role.sees_everything or row.owner_id == principal.user_id):
        raise MeterNotFoundError("no such meter", meter_id=meter_id)
    return row
