"""Meter readings in the live service: ingest, store, and read back.

:meth:`MeteringService.ingest` is the one way readings enter wattx, whether
they come over HTTP or MQTT: parse, validate against the stored state
(:func:`wattx.metering.validate_batch`), store, in one write transaction that
holds the meter's row lock, so two batches of one meter never validate
against the same last reading. Events are published after the commit.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
    validate_batch,
)
from wattx.services.errors import MeterNotFoundError
from wattx.services.measurement.meters import MeterStatus
from wattx.services.principal import Principal
from wattx.store import meters as meter_repo
from wattx.store import readings as repo
from wattx.store.db import Database, is_storage_failure
from wattx.store.meters import MeterRecord
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
        # Single-batch posts waiting for the group commit, and the tasks writing them: one
        # lane on SQLite (one writer at a time there anyway), several on PostgreSQL.
        lanes = 1 if db.is_sqlite else POSTGRES_WRITE_LANES
        self._lanes = [_WriteLane() for _ in range(lanes)]

    @property
    def policy(self) -> ValidationPolicy:
        return self._policy

    @property
    def write_lanes(self) -> int:
        """How many group-commit writers store single-batch posts at once (``lane_of``)."""
        return len(self._lanes)

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
            loop = asyncio.get_running_loop()
            pending = _PendingBatch(batch, via, loop.create_future())
            # A meter's batches always take the same lane: judged in arrival order.
            lane = self._lanes[lane_of(meter_id, len(self._lanes))]
            lane.queue.append(pending)
            if lane.writer is None or lane.writer.done():
                lane.writer = loop.create_task(self._write_queued(lane))
            # Shielded: a caller that goes away must not cancel the group it is part of.
            outcome = await asyncio.shield(pending.future)
            if isinstance(outcome, DomainError):
                owner = list(pending.owner)
                raise outcome
        except DomainError as exc:
            await self._publish_rejection(exc, meter_id, owner)
            raise
        result, verdict, owner_id = outcome
        await self._publish_outcome(result, verdict, owner_id)
        return result

    async def _write_queued(self, lane: _WriteLane) -> None:
        """Group commit: the batches posted while a transaction runs share the next one.

        Each is judged as if stored alone, in arrival order per meter; its
        caller is answered only after the commit. A storage failure fails every
        batch of its group (and stores none of them). Any other failure of the
        group's transaction (a conflict, a fault) may belong to one batch, so
        each batch of the group is then stored in a transaction of its own and
        answered with its own outcome: the others' valid readings are kept.
        """
        try:
            while lane.queue:
                group = lane.queue[:MAX_GROUP_BATCHES]
                del lane.queue[:MAX_GROUP_BATCHES]
                try:
                    outcomes = await self._store_group(
                        [(p.batch, p.via) for p in group], [p.owner for p in group]
                    )
                except asyncio.CancelledError:
                    for p in group:
                        p.future.cancel()
                    raise
                except Exception as exc:
                    if len(group) > 1 and not is_storage_failure(exc):
                        await self._store_each_alone(group)
                        continue
                    for p in group:
                        if not p.future.done():
                            p.future.set_exception(exc)
                    continue
                for p, outcome in zip(group, outcomes, strict=True):
                    if not p.future.done():
                        p.future.set_result(outcome)
        except asyncio.CancelledError:
            for p in lane.queue:
                p.future.cancel()
            lane.queue.clear()
            raise

    async def _store_each_alone(self, group: Sequence[_PendingBatch]) -> None:
        """Store each batch of a failed group in its own transaction; answer each."""
        for index, pending in enumerate(group):
            pending.owner.clear()
            try:
                (outcome,) = await self._store_group(
                    [(pending.batch, pending.via)], [pending.owner]
                )
            except asyncio.CancelledError:
                for p in group[index:]:
                    p.future.cancel()
                raise
            except Exception as exc:
                if not pending.future.done():
                    pending.future.set_exception(exc)
                continue
            if not pending.future.done():
                pending.future.set_result(outcome)

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
        batches = [(item, via) for item in parsed if isinstance(item, ReadingBatch)]
        owners: list[list[str]] = [[] for _ in batches]
        stored = iter(await self._store_group(batches, owners))
        owner_of = iter(owners)
        answers: list[IngestResult | DomainError] = []
        for item in parsed:
            if isinstance(item, DomainError):
                await self._publish_rejection(item, None, [])
                answers.append(item)
                continue
            outcome = next(stored)
            owner = next(owner_of)
            if isinstance(outcome, DomainError):
                await self._publish_rejection(outcome, item.meter_id, owner)
                answers.append(outcome)
            else:
                result, verdict, owner_id = outcome
                await self._publish_outcome(result, verdict, owner_id)
                answers.append(result)
        return answers

    async def _store_group(
        self, batches: Sequence[tuple[ReadingBatch, str]], owners: Sequence[list[str]]
    ) -> list[_Stored | DomainError]:
        """Validate and store ``batches`` (each with its channel) in one write transaction.

        The meters and their newest readings are read (meters locked, in id
        order) in two queries for the whole group, the batches judged in order
        of meter and then arrival, and what they store written at the end in a
        few multi-row statements. ``owners[i]`` receives the owner of batch
        ``i``'s meter when it exists.
        """
        outcomes: dict[int, _Stored | DomainError] = {}
        if not batches:
            return []
        now = self._clock.now()
        order = sorted(range(len(batches)), key=lambda i: batches[i][0].meter_id)
        meter_ids = sorted({batch.meter_id for batch, _ in batches})
        writes = _GroupWrites()
        async with self._db.write() as session:
            meters = await meter_repo.meters_by_ids(session, meter_ids, lock=self._db.locks_rows)
            lasts: dict[str, Reading] = await repo.last_readings(session, meter_ids)
            for index in order:
                batch, via = batches[index]
                meter_row = meters.get(batch.meter_id)
                if meter_row is not None:
                    owners[index].append(meter_row.owner_id)
                try:
                    outcomes[index] = await self._judge(
                        session, batch, meter_row, lasts, writes, via=via, now=now
                    )
                except DomainError as exc:
                    outcomes[index] = exc
            await writes.flush(session, now=now)
        return [outcomes[i] for i in range(len(batches))]

    async def _judge(
        self,
        session: AsyncSession,
        batch: ReadingBatch,
        meter_row: MeterRecord | None,
        lasts: dict[str, Reading],
        writes: _GroupWrites,
        *,
        via: str,
        now: datetime,
    ) -> _Stored:
        """Validate one batch against the meter's state, including what earlier batches of
        the group stored, and add what it stores to ``writes``."""
        last = lasts.get(batch.meter_id)
        earlier = [r.seq for r in batch.readings if last is not None and r.seq <= last.seq]
        in_group = writes.digests.get(batch.meter_id, {})
        stored = {seq: in_group[seq] for seq in earlier if seq in in_group}
        missing = [seq for seq in earlier if seq not in in_group]
        if missing:
            stored.update(await repo.digests_by_seq(session, batch.meter_id, missing))
        verdict = validate_batch(
            batch,
            meter=_meter_info(meter_row),
            last_reading=last,
            stored_digests=stored,
            now=now,
            policy=self._policy,
        )
        assert meter_row is not None  # validate_batch refuses unknown meters
        writes.add(batch.meter_id, verdict, self._schedule, via=via, now=now)
        if verdict.last_reading is not None and verdict.last_reading != last:
            lasts[batch.meter_id] = verdict.last_reading
            writes.last[batch.meter_id] = verdict.last_reading
        result = IngestResult(
            meter_id=batch.meter_id,
            zone_id=meter_row.zone_id,
            accepted=len(verdict.accepted),
            duplicates=len(verdict.duplicates),
            quarantined=len(verdict.quarantined),
            alerts=verdict.alerts,
            last_seq=None if verdict.last_reading is None else verdict.last_reading.seq,
        )
        return result, verdict, meter_row.owner_id

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


def _meter_info(row: MeterRecord | None) -> MeterInfo | None:
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
    digest: bytes,
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
        "digest": digest.hex(),
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


MAX_GROUP_BATCHES = 500
"""The most single-batch posts one group-commit transaction takes."""

_Stored = tuple[IngestResult, ValidationVerdict, str]
"""A stored batch's result, its verdict and the meter's owner."""


POSTGRES_WRITE_LANES = 2
"""Group-commit writers on PostgreSQL, each with its own queue and transaction.

A group's transaction spends part of its time waiting for the database (the meters'
locks, ``COPY``, the commit); with one writer the service sat idle then. Meters are
spread over the lanes by id, so a meter's batches stay in one lane, in arrival order,
and two lanes' groups hold disjoint meters: their row locks never meet.
"""


def lane_of(meter_id: str, lanes: int) -> int:
    """The lane of a meter's single-batch posts among ``lanes``: always the same one."""
    return zlib.crc32(meter_id.encode()) % lanes


@dataclass(slots=True)
class _WriteLane:
    """A queue of single-batch posts and the task writing it in groups."""

    queue: list[_PendingBatch] = field(default_factory=list)
    writer: asyncio.Task[None] | None = None


@dataclass(slots=True)
class _PendingBatch:
    """A posted batch waiting for the group commit."""

    batch: ReadingBatch
    via: str
    future: asyncio.Future[_Stored | DomainError]
    owner: list[str] = field(default_factory=list)


@dataclass
class _GroupWrites:
    """What a group of batches stores, kept until the group's end and then written in a
    few multi-row statements."""

    readings: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[MeterAlertRow] = field(default_factory=list)
    energy: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    last: dict[str, Reading] = field(default_factory=dict)
    digests: dict[str, dict[int, bytes]] = field(default_factory=dict)
    """Per meter, the digests of the readings the group stores, by sequence number."""

    def add(
        self,
        meter_id: str,
        verdict: ValidationVerdict,
        schedule: EpochSchedule,
        *,
        via: str,
        now: datetime,
    ) -> None:
        digests = verdict.digests
        rows = [
            _reading_row(meter_id, r, None, digests[r.seq], via=via, now=now)
            for r in verdict.accepted
        ]
        rows += [
            _reading_row(meter_id, q.reading, q, digests[q.reading.seq], via=via, now=now)
            for q in verdict.quarantined
        ]
        self.digests.setdefault(meter_id, {}).update(digests)
        self.readings += rows
        if verdict.alerts:
            times = {
                r.seq: r.ts for r in (*verdict.accepted, *(q.reading for q in verdict.quarantined))
            }
            self.alerts += [
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
            ]
        verified = epoch_energies(verdict.verified_segments, schedule)
        if verdict.quarantined:
            segments = [*verdict.verified_segments, *(q.segment for q in verdict.quarantined)]
            totals = epoch_energies(segments, schedule)
        else:
            totals = verified  # every interval is verified: the same energies
        energies = repo.energy_by_epoch(totals, verified)
        for epoch_id, values in energies.items():
            total = self.energy.setdefault((meter_id, epoch_id), [0, 0, 0])
            for i, value in enumerate(values):
                total[i] += value

    async def flush(self, session: AsyncSession, *, now: datetime) -> None:
        if self.readings:
            await repo.insert_readings(session, self.readings)
        if self.alerts:
            await repo.insert_alerts(session, self.alerts)
        await repo.upsert_energy_and_last_readings(
            session,
            [
                {
                    "meter_id": meter_id,
                    "epoch_id": epoch_id,
                    "import_wh": imported,
                    "export_wh": exported,
                    "verified_export_wh": verified,
                }
                for (meter_id, epoch_id), (imported, exported, verified) in sorted(
                    self.energy.items()
                )
            ],
            self.last,
            now=now,
        )
