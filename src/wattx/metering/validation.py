"""Validation of a batch of readings: one pure function, :func:`validate_batch`.

The rules run in a fixed order, cheapest and least revealing first, so a batch
that is too large or not signed by the meter learns nothing about the stored
state. Rules that would break the meter's register chain (ordering, time,
monotonic registers) reject the whole batch; a reading that keeps the chain
intact but is physically implausible is quarantined instead. Each rule and its
code is listed in ``docs/reading-format.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from itertools import pairwise

from wattx.metering.canonical import (
    canonical_batch_bytes,
    canonical_reading_bytes,
    digest_of_bytes,
)
from wattx.metering.errors import (
    BatchTooLargeError,
    MeterIdMismatchError,
    MeterInactiveError,
    RegistersDecreasingError,
    SequenceNotIncreasingError,
    SequenceReusedError,
    TimestampInFutureError,
    TimestampNotIncreasingError,
    TimestampTooOldError,
    UnknownMeterError,
)
from wattx.metering.intervals import RegisterSegment
from wattx.metering.meters import MeterInfo
from wattx.metering.plausibility import grid_quality_alerts_of, implied_power_check
from wattx.metering.policy import ValidationPolicy
from wattx.metering.readings import Reading, ReadingBatch
from wattx.metering.signing import verify_batch_signature
from wattx.metering.verdict import (
    QuarantinedReading,
    QuarantineReason,
    ValidationVerdict,
)

DEFAULT_POLICY = ValidationPolicy()


def validate_batch(
    batch: ReadingBatch,
    *,
    meter: MeterInfo | None,
    last_reading: Reading | None,
    stored_digests: Mapping[int, bytes],
    now: datetime,
    policy: ValidationPolicy = DEFAULT_POLICY,
) -> ValidationVerdict:
    """Decide what to do with ``batch``; raise a ``DomainError`` if it is rejected.

    ``meter`` is the registry record for ``batch.meter_id`` (``None`` if there
    is none). ``last_reading`` is the meter's newest stored reading, accepted
    or quarantined, or ``None`` before its first. ``stored_digests`` maps the
    sequence numbers of stored readings (accepted or quarantined) to their
    :func:`~wattx.metering.canonical.reading_digest`; it needs entries for at
    least those sequence numbers of the batch that are not above
    ``last_reading.seq``. ``now`` is the service's UTC clock.
    """
    _check_size(batch, policy)
    registered = _check_meter(batch, meter)
    # Each reading's canonical bytes are both signed and digested: encoded once (by the
    # parser, for a batch that came as JSON).
    encoded = batch.read_as
    if encoded is None:
        encoded = tuple(canonical_reading_bytes(r) for r in batch.readings)
    verify_batch_signature(
        batch, registered.public_key, signed_bytes=canonical_batch_bytes(batch, encoded)
    )
    _check_order(batch.readings)
    duplicates, fresh = _split_duplicates(batch.readings, encoded, last_reading, stored_digests)
    if fresh and last_reading is not None:
        _check_successor(last_reading, fresh[0])
    _check_times(fresh, now, policy)
    digests = {
        r.seq: digest_of_bytes(b)
        for r, b in zip(batch.readings[len(duplicates) :], encoded[len(duplicates) :], strict=True)
    }
    return _judge_fresh_readings(fresh, duplicates, last_reading, registered, policy, digests)


def _check_size(batch: ReadingBatch, policy: ValidationPolicy) -> None:
    if len(batch.readings) > policy.max_batch_size:
        raise BatchTooLargeError(
            f"a batch holds at most {policy.max_batch_size} readings, this one "
            f"{len(batch.readings)}",
            limit=policy.max_batch_size,
            size=len(batch.readings),
        )


def _check_meter(batch: ReadingBatch, meter: MeterInfo | None) -> MeterInfo:
    if meter is None:
        raise UnknownMeterError(
            f"no meter {batch.meter_id!r} is registered", meter_id=batch.meter_id
        )
    if meter.id != batch.meter_id:
        raise MeterIdMismatchError(
            f"the batch is for meter {batch.meter_id!r}, not {meter.id!r}",
            meter_id=batch.meter_id,
            expected=meter.id,
        )
    if not meter.active:
        raise MeterInactiveError(f"meter {meter.id!r} is not active", meter_id=meter.id)
    return meter


def _check_order(readings: Sequence[Reading]) -> None:
    """Within the batch, sequence numbers and timestamps increase and registers never decrease."""
    for previous, reading in pairwise(readings):
        _check_successor(previous, reading)


def _check_successor(previous: Reading, reading: Reading) -> None:
    """``reading`` may follow ``previous`` in the meter's register chain."""
    if reading.seq <= previous.seq:
        raise SequenceNotIncreasingError(
            f"reading {reading.seq} follows reading {previous.seq}",
            seq=reading.seq,
            previous_seq=previous.seq,
        )
    if reading.ts <= previous.ts:
        raise TimestampNotIncreasingError(
            f"reading {reading.seq} is not later than reading {previous.seq}",
            seq=reading.seq,
            previous_seq=previous.seq,
        )
    if reading.import_wh < previous.import_wh or reading.export_wh < previous.export_wh:
        raise RegistersDecreasingError(
            f"registers of reading {reading.seq} are below those of reading {previous.seq}",
            seq=reading.seq,
            previous_seq=previous.seq,
        )


def _split_duplicates(
    readings: Sequence[Reading],
    encoded: Sequence[bytes],
    last_reading: Reading | None,
    stored_digests: Mapping[int, bytes],
) -> tuple[tuple[Reading, ...], tuple[Reading, ...]]:
    """Readings already stored (a leading run, since the batch is in order) and the rest.

    A reading at or below the newest stored sequence number must be an exact
    copy of the stored one: a resend after a lost acknowledgement.
    """
    newest_seq = -1 if last_reading is None else last_reading.seq
    count = 0
    for reading, reading_bytes in zip(readings, encoded, strict=True):
        if reading.seq > newest_seq:
            break
        stored = stored_digests.get(reading.seq)
        if stored is None:
            raise SequenceNotIncreasingError(
                f"reading {reading.seq} is not above the newest stored reading {newest_seq}",
                seq=reading.seq,
                previous_seq=newest_seq,
            )
        if stored != digest_of_bytes(reading_bytes):
            raise SequenceReusedError(
                f"reading {reading.seq} is already stored with different content",
                seq=reading.seq,
            )
        count += 1
    return tuple(readings[:count]), tuple(readings[count:])


def _check_times(fresh: Sequence[Reading], now: datetime, policy: ValidationPolicy) -> None:
    # Timestamps increase through the batch: the first is the oldest, the last the newest.
    if not fresh:
        return
    latest_allowed = now + timedelta(seconds=policy.max_future_skew_s)
    if fresh[-1].ts > latest_allowed:
        raise TimestampInFutureError(
            f"reading {fresh[-1].seq} is more than {policy.max_future_skew_s} s ahead of "
            "the service clock",
            seq=fresh[-1].seq,
        )
    earliest_allowed = now - timedelta(seconds=policy.retention_s)
    if fresh[0].ts < earliest_allowed:
        raise TimestampTooOldError(
            f"reading {fresh[0].seq} is older than the retention window of {policy.retention_s} s",
            seq=fresh[0].seq,
        )


def _judge_fresh_readings(
    fresh: Sequence[Reading],
    duplicates: tuple[Reading, ...],
    last_reading: Reading | None,
    meter: MeterInfo,
    policy: ValidationPolicy,
    digests: Mapping[int, bytes],
) -> ValidationVerdict:
    accepted: list[Reading] = []
    quarantined: list[QuarantinedReading] = []
    verified_segments: list[RegisterSegment] = []
    power_excess = implied_power_check(meter.rated_capacity_w, policy)
    previous = last_reading
    for reading in fresh:
        if previous is None:
            # The meter's first reading is its baseline: no interval, no energy yet.
            accepted.append(reading)
        else:
            segment = RegisterSegment.between(previous, reading)
            excess = power_excess(segment)
            if excess is None:
                accepted.append(reading)
                verified_segments.append(segment)
            else:
                quarantined.append(
                    QuarantinedReading(
                        reading, QuarantineReason.POWER_ABOVE_CAPACITY, excess, segment
                    )
                )
        previous = reading
    alerts = grid_quality_alerts_of(fresh, policy)
    return ValidationVerdict(
        accepted=tuple(accepted),
        duplicates=duplicates,
        quarantined=tuple(quarantined),
        alerts=tuple(alerts),
        verified_segments=tuple(verified_segments),
        last_reading=previous,
        digests=digests,
    )
