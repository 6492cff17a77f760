"""Ed25519 signatures over the canonical encoding of a batch.

:func:`verify_batch_signature` is what ingestion calls. :func:`sign_batch` and
:class:`MeterSigner` are the meter's side, for test meters and the simulator:
a signer holds the meter's key and its cumulative registers, so the readings it
produces are consistent by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from nacl.exceptions import BadSignatureError as NaclBadSignatureError
from nacl.signing import SigningKey, VerifyKey

from wattx.metering.canonical import canonical_batch_bytes
from wattx.metering.errors import BadSignatureError, MalformedReadingBatchError
from wattx.metering.fields import PUBLIC_KEY_SIZE, check_meter_id, check_reading
from wattx.metering.readings import FORMAT_VERSION, Reading, ReadingBatch

SEED_SIZE = 32
"""Bytes in an Ed25519 private key seed."""


def sign_batch(meter_id: str, readings: Sequence[Reading], seed: bytes) -> ReadingBatch:
    """A batch of ``readings`` signed with the Ed25519 key whose 32-byte seed is ``seed``.

    The readings are checked against the format's value rules first, so a
    signed batch always parses back to itself.
    """
    check_meter_id(meter_id)
    if not readings:
        raise MalformedReadingBatchError("a batch needs at least one reading")
    for index, reading in enumerate(readings):
        check_reading(reading, index)
    unsigned = ReadingBatch(meter_id=meter_id, readings=tuple(readings), signature=b"")
    signature = _signing_key(seed).sign(canonical_batch_bytes(unsigned)).signature
    return ReadingBatch(
        meter_id=meter_id, readings=unsigned.readings, signature=signature, version=FORMAT_VERSION
    )


def public_key_of(seed: bytes) -> bytes:
    """The 32-byte Ed25519 public key of a seed, as registered with the meter."""
    return bytes(_signing_key(seed).verify_key)


def verify_batch_signature(
    batch: ReadingBatch, public_key: bytes, *, signed_bytes: bytes | None = None
) -> None:
    """Raise :class:`BadSignatureError` unless ``batch`` is signed by ``public_key``.

    ``signed_bytes``, when given, is ``canonical_batch_bytes(batch)`` already computed.
    """
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise BadSignatureError(
            "the meter's registered public key is not a 32-byte Ed25519 key",
            meter_id=batch.meter_id,
        )
    try:
        if signed_bytes is None:
            signed_bytes = canonical_batch_bytes(batch)
        VerifyKey(public_key).verify(signed_bytes, batch.signature)
    except (NaclBadSignatureError, ValueError) as exc:
        raise BadSignatureError(
            "the signature does not verify with the meter's public key", meter_id=batch.meter_id
        ) from exc


class MeterSigner:
    """A meter's key and registers: records energy and signs batches of readings.

    ``record`` advances the cumulative registers by the energy that flowed
    since the previous reading and numbers readings consecutively.
    """

    def __init__(
        self,
        meter_id: str,
        seed: bytes,
        *,
        import_wh: int = 0,
        export_wh: int = 0,
        next_seq: int = 1,
    ) -> None:
        check_meter_id(meter_id)
        self.meter_id = meter_id
        self._seed = bytes(seed)
        self.public_key = public_key_of(self._seed)
        self.import_wh = import_wh
        self.export_wh = export_wh
        self.next_seq = next_seq

    def record(
        self,
        ts: datetime,
        *,
        imported_wh: int = 0,
        exported_wh: int = 0,
        power_w: int | None = None,
        voltage_mv: int | None = None,
        frequency_millihz: int | None = None,
        soc_permille: int | None = None,
    ) -> Reading:
        """A reading at ``ts`` after ``imported_wh`` and ``exported_wh`` more have flowed."""
        if imported_wh < 0 or exported_wh < 0:
            raise ValueError("energy recorded by a meter is never negative")
        reading = Reading(
            seq=self.next_seq,
            ts=ts,
            import_wh=self.import_wh + imported_wh,
            export_wh=self.export_wh + exported_wh,
            power_w=power_w,
            voltage_mv=voltage_mv,
            frequency_millihz=frequency_millihz,
            soc_permille=soc_permille,
        )
        check_reading(reading, 0)
        self.import_wh = reading.import_wh
        self.export_wh = reading.export_wh
        self.next_seq += 1
        return reading

    def sign(self, readings: Sequence[Reading]) -> ReadingBatch:
        """``readings`` as one batch signed with this meter's key."""
        return sign_batch(self.meter_id, readings, self._seed)


def _signing_key(seed: bytes) -> SigningKey:
    if len(seed) != SEED_SIZE:
        raise ValueError(f"an Ed25519 seed is {SEED_SIZE} bytes, got {len(seed)}")
    return SigningKey(seed)
