"""Signatures: what a meter signs verifies, and any change to it does not."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from wattx.metering import (
    BadSignatureError,
    MalformedReadingBatchError,
    MeterSigner,
    Reading,
    canonical_batch_bytes,
    decode_reading_batch,
    encode_reading_batch,
    public_key_of,
    sign_batch,
    verify_batch_signature,
)

from .conftest import METER_SEED, OTHER_SEED, T0


def _two_readings(signer: MeterSigner) -> list[Reading]:
    return [
        signer.record(T0, imported_wh=1, exported_wh=2),
        signer.record(T0 + timedelta(minutes=5), exported_wh=300, soc_permille=640),
    ]


def test_a_signed_batch_verifies_after_travelling_as_json(signer: MeterSigner) -> None:
    batch = signer.sign(_two_readings(signer))
    received = decode_reading_batch(encode_reading_batch(batch))
    verify_batch_signature(received, signer.public_key)


def test_the_signature_is_plain_ed25519_over_the_canonical_bytes(signer: MeterSigner) -> None:
    batch = signer.sign(_two_readings(signer))
    # An independent Ed25519 implementation accepts it; it raises if not.
    Ed25519PublicKey.from_public_bytes(signer.public_key).verify(
        batch.signature, canonical_batch_bytes(batch)
    )


@pytest.mark.parametrize(
    "tamper",
    [
        lambda r: replace(r, export_wh=r.export_wh + 1),
        lambda r: replace(r, import_wh=r.import_wh + 1),
        lambda r: replace(r, seq=r.seq + 100),
        lambda r: replace(r, ts=r.ts + timedelta(seconds=1)),
        lambda r: replace(r, soc_permille=None),
        lambda r: replace(r, power_w=0),
    ],
)
def test_changing_any_signed_value_breaks_the_signature(
    signer: MeterSigner, tamper: object
) -> None:
    batch = signer.sign(_two_readings(signer))
    assert callable(tamper)
    tampered = replace(batch, readings=(batch.readings[0], tamper(batch.readings[1])))
    with pytest.raises(BadSignatureError) as caught:
        verify_batch_signature(tampered, signer.public_key)
    assert caught.value.code == "bad_signature"
    assert caught.value.http_status == 403


def test_the_meter_id_and_reading_order_are_signed(signer: MeterSigner) -> None:
    batch = signer.sign(_two_readings(signer))
    with pytest.raises(BadSignatureError):
        verify_batch_signature(replace(batch, meter_id="meter-b"), signer.public_key)
    with pytest.raises(BadSignatureError):
        verify_batch_signature(replace(batch, readings=batch.readings[::-1]), signer.public_key)
    with pytest.raises(BadSignatureError):
        verify_batch_signature(replace(batch, readings=batch.readings[:1]), signer.public_key)


def test_another_meters_key_does_not_verify(signer: MeterSigner) -> None:
    batch = signer.sign(_two_readings(signer))
    with pytest.raises(BadSignatureError):
        verify_batch_signature(batch, public_key_of(OTHER_SEED))


def test_a_registered_key_of_the_wrong_size_is_a_bad_signature(signer: MeterSigner) -> None:
    batch = signer.sign(_two_readings(signer))
    with pytest.raises(BadSignatureError, match="32-byte"):
        verify_batch_signature(batch, signer.public_key[:31])


def test_a_signature_of_the_wrong_size_does_not_verify(signer: MeterSigner) -> None:
    batch = signer.sign(_two_readings(signer))
    with pytest.raises(BadSignatureError):
        verify_batch_signature(replace(batch, signature=batch.signature[:63]), signer.public_key)


def test_the_signer_numbers_readings_and_accumulates_registers() -> None:
    signer = MeterSigner("m-1", METER_SEED, import_wh=50, export_wh=70, next_seq=9)
    first = signer.record(T0, imported_wh=5)
    second = signer.record(T0 + timedelta(minutes=1), exported_wh=3, imported_wh=1)
    assert (first.seq, first.import_wh, first.export_wh) == (9, 55, 70)
    assert (second.seq, second.import_wh, second.export_wh) == (10, 56, 73)
    assert signer.next_seq == 11


def test_the_signer_refuses_negative_energy() -> None:
    signer = MeterSigner("m-1", METER_SEED)
    with pytest.raises(ValueError, match="never negative"):
        signer.record(T0, exported_wh=-1)
    assert signer.next_seq == 1


def test_only_well_formed_batches_are_signed() -> None:
    with pytest.raises(MalformedReadingBatchError):
        sign_batch("bad id with spaces", [Reading(1, T0, 0, 0)], METER_SEED)
    with pytest.raises(MalformedReadingBatchError):
        sign_batch("m-1", [], METER_SEED)
    with pytest.raises(MalformedReadingBatchError):
        sign_batch("m-1", [Reading(1, T0.replace(tzinfo=None), 0, 0)], METER_SEED)
    with pytest.raises(MalformedReadingBatchError):
        sign_batch("m-1", [Reading(1, T0.replace(microsecond=5), 0, 0)], METER_SEED)


def test_a_seed_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        MeterSigner("m-1", b"short")
