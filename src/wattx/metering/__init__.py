"""Metering: the reading format, its signatures, validation, interval energy, mint amounts.

Pure: no I/O. Ingestion (HTTP, MQTT), storage and the oracle call these
functions and keep the state they take and return. The reading format is
specified in ``docs/reading-format.md``.
"""

from wattx.metering.canonical import canonical_batch_bytes, canonical_reading_bytes, reading_digest
from wattx.metering.errors import (
    BadSignatureError,
    BatchTooLargeError,
    MalformedReadingBatchError,
    MeterIdMismatchError,
    MeterInactiveError,
    RegistersDecreasingError,
    SequenceNotIncreasingError,
    SequenceReusedError,
    TimestampInFutureError,
    TimestampNotIncreasingError,
    TimestampTooOldError,
    UnknownMeterError,
    UnsupportedFormatVersionError,
)
from wattx.metering.intervals import EpochEnergy, RegisterSegment, epoch_energies, split_segment
from wattx.metering.meters import MeterInfo
from wattx.metering.minting import (
    MintDecision,
    MintPolicy,
    MintWatermark,
    compute_mint,
    last_covered_epoch,
)
from wattx.metering.parsing import (
    decode_reading_batch,
    encode_reading_batch,
    parse_reading_batch,
    reading_batch_to_json,
)
from wattx.metering.policy import ValidationPolicy
from wattx.metering.readings import FORMAT_VERSION, Reading, ReadingBatch
from wattx.metering.signing import MeterSigner, public_key_of, sign_batch, verify_batch_signature
from wattx.metering.validation import validate_batch
from wattx.metering.verdict import (
    AlertKind,
    QuarantinedReading,
    QuarantineReason,
    ReadingAlert,
    ValidationVerdict,
)

__all__ = [
    "FORMAT_VERSION",
    "AlertKind",
    "BadSignatureError",
    "BatchTooLargeError",
    "EpochEnergy",
    "MalformedReadingBatchError",
    "MeterIdMismatchError",
    "MeterInactiveError",
    "MeterInfo",
    "MeterSigner",
    "MintDecision",
    "MintPolicy",
    "MintWatermark",
    "QuarantineReason",
    "QuarantinedReading",
    "Reading",
    "ReadingAlert",
    "ReadingBatch",
    "RegisterSegment",
    "RegistersDecreasingError",
    "SequenceNotIncreasingError",
    "SequenceReusedError",
    "TimestampInFutureError",
    "TimestampNotIncreasingError",
    "TimestampTooOldError",
    "UnknownMeterError",
    "UnsupportedFormatVersionError",
    "ValidationPolicy",
    "ValidationVerdict",
    "canonical_batch_bytes",
    "canonical_reading_bytes",
    "compute_mint",
    "decode_reading_batch",
    "encode_reading_batch",
    "epoch_energies",
    "last_covered_epoch",
    "parse_reading_batch",
    "public_key_of",
    "reading_batch_to_json",
    "reading_digest",
    "sign_batch",
    "split_segment",
    "validate_batch",
    "verify_batch_signature",
]
