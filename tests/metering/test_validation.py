"""Validation: every rule, its code, and what it does to the batch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from wattx.domain.errors import DomainError, ValidationError
from wattx.metering import (
    AlertKind,
    BadSignatureError,
    BatchTooLargeError,
    MeterIdMismatchError,
    MeterInactiveError,
    MeterInfo,
    MeterSigner,
    QuarantineReason,
    Reading,
    ReadingBatch,
    RegistersDecreasingError,
    RegisterSegment,
    SequenceNotIncreasingError,
    SequenceReusedError,
    TimestampInFutureError,
    TimestampNotIncreasingError,
    TimestampTooOldError,
    UnknownMeterError,
    ValidationPolicy,
    ValidationVerdict,
    decode_reading_batch,
    encode_reading_batch,
    reading_digest,
    sign_batch,
    validate_batch,
)

from .conftest import METER_SEED, OTHER_SEED, T0

NOW = T0 + timedelta(hours=1)
MINUTE = timedelta(minutes=1)


def _validate(
    batch: ReadingBatch,
    meter: MeterInfo | None,
    *,
    last: Reading | None = None,
    stored: Sequence[Reading] = (),
    now: datetime = NOW,
    policy: ValidationPolicy | None = None,
) -> ValidationVerdict:
    digests: Mapping[int, bytes] = {r.seq: reading_digest(r) for r in stored}
    return validate_batch(
        batch,
        meter=meter,
        last_reading=last,
        stored_digests=digests,
        now=now,
        policy=policy or ValidationPolicy(),
    )


def _steady(signer: MeterSigner, count: int, *, start: datetime = T0) -> list[Reading]:
    """Readings a minute apart, exporting 50 Wh a minute (3 kW) from a 5 kW meter."""
    return [signer.record(start + i * MINUTE, exported_wh=50) for i in range(count)]


def _signed(readings: Sequence[Reading]) -> ReadingBatch:
    return sign_batch("meter-a", readings, METER_SEED)


def test_a_first_batch_is_accepted_with_the_first_reading_as_baseline(
    signer: MeterSigner, meter: MeterInfo
) -> None:
    readings = _steady(signer, 3)
    verdict = _validate(signer.sign(readings), meter)
    assert verdict.accepted == tuple(readings)
    assert verdict.duplicates == ()
    assert verdict.quarantined == ()
    assert verdict.alerts == ()
    assert verdict.verified_segments == (
        RegisterSegment(T0, T0 + MINUTE, 0, 50),
        RegisterSegment(T0 + MINUTE, T0 + 2 * MINUTE, 0, 50),
    )
    assert verdict.last_reading == readings[-1]


def test_a_later_batch_continues_from_the_last_stored_reading(
    signer: MeterSigner, meter: MeterInfo
) -> None:
    first = _steady(signer, 2)
    later = _steady(signer, 2, start=T0 + 10 * MINUTE)
    verdict = _validate(signer.sign(later), meter, last=first[-1], stored=first)
    assert verdict.accepted == tuple(later)
    assert verdict.verified_segments[0] == RegisterSegment(first[-1].ts, later[0].ts, 0, 50)


def test_error_codes_and_statuses_are_stable() -> None:
    expected: dict[type[DomainError], tuple[str, int]] = {
        BatchTooLargeError: ("batch_too_large", 413),
        UnknownMeterError: ("unknown_meter", 404),
        MeterIdMismatchError: ("meter_id_mismatch", 422),
        MeterInactiveError: ("meter_inactive", 403),
        BadSignatureError: ("bad_signature", 403),
        SequenceNotIncreasingError: ("sequence_not_increasing", 409),
        SequenceReusedError: ("sequence_reused", 409),
        TimestampNotIncreasingError: ("timestamp_not_increasing", 422),
        TimestampInFutureError: ("timestamp_in_future", 422),
        TimestampTooOldError: ("timestamp_too_old", 422),
        RegistersDecreasingError: ("registers_decreasing", 422),
    }
    assert {cls: (cls.code, cls.http_status) for cls in expected} == expected
    assert QuarantineReason.POWER_ABOVE_CAPACITY.value == "power_above_capacity"


# --- batch-level rejections ---------------------------------------------------------------


def test_a_batch_above_the_size_limit_is_refused_before_its_signature(
    signer: MeterSigner, meter: MeterInfo
) -> None:
    batch = signer.sign(_steady(signer, 3))
    unsigned = replace(batch, signature=bytes(64))
    with pytest.raises(BatchTooLargeError) as caught:
        _validate(unsigned, meter, policy=ValidationPolicy(max_batch_size=2))
    assert caught.value.context == {"limit": 2, "size": 3}
    assert _validate(batch, meter, policy=ValidationPolicy(max_batch_size=3)).accepted


def test_an_unknown_meter_is_refused(signer: MeterSigner) -> None:
    with pytest.raises(UnknownMeterError):
        _validate(signer.sign(_steady(signer, 1)), None)


def test_a_batch_for_another_meter_is_refused(signer: MeterSigner, meter: MeterInfo) -> None:
    other = replace(meter, id="meter-b")
    with pytest.raises(MeterIdMismatchError):
        _validate(signer.sign(_steady(signer, 1)), other)


def test_an_inactive_meter_is_refused(signer: MeterSigner, meter: MeterInfo) -> None:
    with pytest.raises(MeterInactiveError):
        _validate(signer.sign(_steady(signer, 1)), replace(meter, active=False))


def test_a_batch_signed_with_another_key_is_refused(signer: MeterSigner, meter: MeterInfo) -> None:
    forged = sign_batch("meter-a", _steady(signer, 2), OTHER_SEED)
    with pytest.raises(BadSignatureError):
        _validate(forged, meter)


def test_a_parsed_batch_with_other_readings_is_judged_by_its_own_readings(
    signer: MeterSigner, meter: MeterInfo
) -> None:
    sent = decode_reading_batch(encode_reading_batch(signer.sign(_steady(signer, 2))))
    assert sent.read_as is not None  # the parser's bytes, which validation signs and digests
    assert _validate(sent, meter).accepted == sent.readings
    forged = replace(sent.readings[1], import_wh=sent.readings[1].import_wh + 1)
    tampered = replace(sent, readings=(sent.readings[0], forged))
    # The parser's bytes were those of the readings it read: a batch made with others
    # must not carry them, or the forged reading would pass under the old signature.
    assert tampered.read_as is None
    with pytest.raises(BadSignatureError):
        _validate(tampered, meter)


def test_an_unsigned_batch_learns_nothing_about_stored_state(
    signer: MeterSigner, meter: MeterInfo
) -> None:
    stored = _steady(signer, 3)
    replay = replace(signer.sign(stored[:1]), signature=bytes(64))
    # A signed replay of seq 1 with other content would be sequence_reused;
    # unsigned, the signature is what fails.
    with pytest.raises(BadSignatureError):
        _validate(replay, meter, last=stored[-1], stored=stored)


@pytest.mark.parametrize("second_seq", [1, 0])
def test_sequence_numbers_must_increase_within_a_batch(meter: MeterInfo, second_seq: int) -> None:
    batch = _signed([Reading(1, T0, 0, 0), Reading(second_seq, T0 + MINUTE, 0, 1)])
    with pytest.raises(SequenceNotIncreasingError):
        _validate(batch, meter)


def test_a_reading_below_the_newest_stored_one_must_be_a_stored_reading(
    signer: MeterSigner, meter: MeterInfo
) -> None:
    stored = _steady(signer, 3)
    # Reading 2 was never stored here: say it was lost on the way, and the
    # meter's counter went back.
    kept = [stored[0], stored[2]]
    with pytest.raises(SequenceNotIncreasingError):
        _validate(signer.sign([stored[1]]), meter, last=stored[2], stored=kept)


def test_a_stored_sequence_number_with_other_content_is_refused(
    signer: MeterSigner, meter: MeterInfo
) -> None:
    stored = _steady(signer, 2)
    rewritten = replace(stored[1], export_wh=stored[1].export_wh + 1)
    with pytest.raises(SequenceReusedError):
        _validate(_signed([rewritten]), meter, last=stored[-1], stored=stored)


def test_timestamps_must_increase_within_a_batch(meter: MeterInfo) -> None:
    batch = _signed([Reading(1, T0, 0, 0), Reading(2, T0, 0, 0)])
    with pytest.raises(TimestampNotIncreasingError):
        _validate(batch, meter)


def test_timestamps_must_increase_from_the_last_stored_reading(
    signer: MeterSigner, meter: MeterInfo
) -> None:
    stored = _steady(signer, 2)
    batch = _signed([replace(stored[1], seq=3, ts=stored[1].ts - MINUTE)])
    with pytest.raises(TimestampNotIncreasingError):
        _validate(batch, meter, last=stored[-1], stored=stored)


@pytest.mark.parametrize(("imported", "exported"), [(-1, 0), (0, -1)])
def test_registers_must_not_decrease_within_a_batch(
    meter: MeterInfo, imported: int, exported: int
) -> None:
    batch = _signed(
        [Reading(1, T0, 100, 100), Reading(2, T0 + MINUTE, 100 + imported, 100 + exported)]
    )
    with pytest.raises(RegistersDecreasingError):
        _validate(batch, meter)


def test_registers_must_not_decrease_from_the_last_stored_reading(
    signer: MeterSigner, meter: MeterInfo
) -> None:
    stored = _steady(signer, 2)
    later = Reading(3, stored[1].ts + MINUTE, stored[1].import_wh - 1, stored[1].export_wh)
    with pytest.raises(RegistersDecreasingError):
        _validate(_signed([later]), meter, last=stored[-1], stored=stored)


def test_equal_registers_are_fine(meter: MeterInfo) -> None:
    batch = _signed([Reading(1, T0, 100, 100), Reading(2, T0 + MINUTE, 100, 100)])
    assert len(_validate(batch, meter).accepted) == 2


def test_a_reading_more_than_the_skew_ahead_is_refused(meter: MeterInfo) -> None:
    skew = timedelta(seconds=60)
    on_the_limit = _signed([Reading(1, NOW + skew, 0, 0)])
    assert _validate(on_the_limit, meter).accepted
    beyond = _signed([Reading(1, NOW + skew + timedelta(seconds=1), 0, 0)])
    with pytest.raises(TimestampInFutureError):
        _validate(beyond, meter)


def test_a_reading_older_than_the_retention_window_is_refused(meter: MeterInfo) -> None:
    policy = ValidationPolicy(retention_s=86_400)
    on_the_limit = _signed([Reading(1, NOW - timedelta(days=1), 0, 0)])
    assert _validate(on_the_limit, meter, policy=policy).accepted
    beyond = _signed([Reading(1, NOW - timedelta(days=1, seconds=1), 0, 0), Reading(2, NOW, 0, 1)])
    with pytest.raises(TimestampTooOldError):
        _validate(beyond, meter, policy=policy)


# --- duplicates -----------------------------------------------------------------------------


def test_a_resent_batch_is_acknowledged_as_duplicates_and_stores_nothing(
    signer: MeterSigner, meter: MeterInfo
) -> None:
    readings = _steady(signer, 3)
    batch = signer.sign(readings)
    verdict = _validate(batch, meter, last=readings[-1], stored=readings)
    assert verdict.duplicates == tuple(readings)
    assert verdict.accepted == ()
    assert verdict.quarantined == ()
    assert verdict.verified_segments == ()
    assert verdict.last_reading == readings[-1]


def test_a_resend_with_new_readings_stores_only_the_new_ones(
    signer: MeterSigner, meter: MeterInfo
) -> None:
    readings = _steady(signer, 4)
    verdict = _validate(signer.sign(readings), meter, last=readings[1], stored=readings[:2])
    assert verdict.duplicates == tuple(readings[:2])
    assert verdict.accepted == tuple(readings[2:])
    assert verdict.verified_segments[0] == RegisterSegment(readings[1].ts, readings[2].ts, 0, 50)


def test_the_verdict_digests_every_new_reading_and_no_duplicate(
    signer: MeterSigner, meter: MeterInfo
) -> None:
    readings = _steady(signer, 3)
    readings.append(signer.record(readings[-1].ts + timedelta(minutes=1), exported_wh=9_000))
    verdict = _validate(signer.sign(readings), meter, last=readings[0], stored=readings[:1])
    assert verdict.duplicates == (readings[0],)
    assert [q.reading for q in verdict.quarantined] == [readings[3]]
    # Accepted and quarantined readings are stored, so both need their digest.
    assert verdict.digests == {r.seq: reading_digest(r) for r in readings[1:]}


def test_duplicates_are_acknowledged_even_when_they_have_aged(
    signer: MeterSigner, meter: MeterInfo
) -> None:
    readings = _steady(signer, 2)
    later = NOW + timedelta(days=40)
    verdict = _validate(signer.sign(readings), meter, last=readings[-1], stored=readings, now=later)
    assert verdict.duplicates == tuple(readings)


# --- quarantine and alerts ------------------------------------------------------------------


def _hour_apart(signer: MeterSigner, *, imported: int, exported: int) -> list[Reading]:
    start = NOW - 2 * timedelta(hours=1)
    return [
        signer.record(start),
        signer.record(start + timedelta(hours=1), imported_wh=imported, exported_wh=exported),
    ]


def test_power_up_to_rated_capacity_plus_margin_and_rounding_is_accepted(
    signer: MeterSigner, meter: MeterInfo
) -> None:
    # 5 kW for an hour, +10 % margin, +1 Wh per register for rounding: 5502 Wh.
    readings = _hour_apart(signer, imported=2, exported=5_500)
    verdict = _validate(signer.sign(readings), meter)
    assert verdict.accepted == tuple(readings)


def test_power_above_rated_capacity_is_quarantined_with_its_segment(
    signer: MeterSigner, meter: MeterInfo
) -> None:
    readings = _hour_apart(signer, imported=0, exported=5_503)
    verdict = _validate(signer.sign(readings), meter)
    assert verdict.accepted == (readings[0],)
    assert verdict.verified_segments == ()
    (held,) = verdict.quarantined
    assert held.reading == readings[1]
    assert held.reason is QuarantineReason.POWER_ABOVE_CAPACITY
    assert "5503 Wh in 3600 s" in held.detail
    assert held.segment == RegisterSegment(readings[0].ts, readings[1].ts, 0, 5_503)
    assert verdict.last_reading == readings[1]


def test_import_and_export_together_count_against_the_capacity(
    signer: MeterSigner, meter: MeterInfo
) -> None:
    readings = _hour_apart(signer, imported=3_000, exported=3_000)
    assert len(_validate(signer.sign(readings), meter).quarantined) == 1


def test_the_chain_continues_from_a_quarantined_reading(
    signer: MeterSigner, meter: MeterInfo
) -> None:
    readings = _hour_apart(signer, imported=0, exported=9_000)
    first = _validate(signer.sign(readings), meter)
    following = signer.record(readings[1].ts + timedelta(minutes=15), exported_wh=500)
    verdict = _validate(signer.sign([following]), meter, last=first.last_reading, stored=readings)
    assert verdict.accepted == (following,)
    assert verdict.verified_segments == (RegisterSegment(readings[1].ts, following.ts, 0, 500),)


def test_values_out_of_band_raise_alerts_and_are_stored(
    signer: MeterSigner, meter: MeterInfo
) -> None:
    readings = [
        signer.record(T0, voltage_mv=206_999, frequency_millihz=50_000),
        signer.record(T0 + MINUTE, voltage_mv=230_000, frequency_millihz=50_501),
        signer.record(T0 + 2 * MINUTE, voltage_mv=253_000, frequency_millihz=49_500),
    ]
    verdict = _validate(signer.sign(readings), meter)
    assert verdict.accepted == tuple(readings)
    assert [(a.seq, a.kind, a.value) for a in verdict.alerts] == [
        (readings[0].seq, AlertKind.VOLTAGE_OUT_OF_BAND, 206_999),
        (readings[1].seq, AlertKind.FREQUENCY_OUT_OF_BAND, 50_501),
    ]
    assert (verdict.alerts[0].low, verdict.alerts[0].high) == (207_000, 253_000)


def test_duplicates_raise_no_alerts_again(signer: MeterSigner, meter: MeterInfo) -> None:
    readings = [signer.record(T0, voltage_mv=100_000)]
    verdict = _validate(signer.sign(readings), meter, last=readings[0], stored=readings)
    assert verdict.duplicates == tuple(readings)
    assert verdict.alerts == ()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_batch_size": 0},
        {"max_future_skew_s": -1},
        {"retention_s": 0},
        {"capacity_margin_pct": -1},
        {"register_resolution_wh": -1},
        {"voltage_band_mv": (253_000, 207_000)},
        {"frequency_band_millihz": (50_500, 49_500)},
    ],
)
def test_a_policy_out_of_range_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ValidationPolicy(**kwargs)  # type: ignore[arg-type]
