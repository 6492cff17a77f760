"""Why a batch of readings is refused: one error class per rule, each with a stable code.

Every class here rejects a *whole batch*; nothing of it is stored. Readings that
are well formed, well signed and consistent with the meter's register chain but
physically implausible are not refused: they are quarantined (see
:class:`wattx.metering.verdict.QuarantineReason`).
"""

from __future__ import annotations

from wattx.domain.errors import (
    ConflictError,
    DomainError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)


class MalformedReadingBatchError(ValidationError):
    """The document is not a reading batch as ``docs/reading-format.md`` defines it."""

    code = "malformed_reading_batch"
    title = "Malformed reading batch"


class UnsupportedFormatVersionError(ValidationError):
    code = "unsupported_format_version"
    title = "Unsupported reading format version"


class BatchTooLargeError(DomainError):
    code = "batch_too_large"
    http_status = 413
    title = "Reading batch too large"


class UnknownMeterError(NotFoundError):
    code = "unknown_meter"
    title = "Unknown meter"


class MeterIdMismatchError(ValidationError):
    """The batch names another meter than the one it was submitted for."""

    code = "meter_id_mismatch"
    title = "Batch is for another meter"


class MeterInactiveError(PermissionDeniedError):
    code = "meter_inactive"
    title = "Meter is inactive"


class BadSignatureError(PermissionDeniedError):
    code = "bad_signature"
    title = "Batch signature does not verify with the meter's key"


class SequenceNotIncreasingError(ConflictError):
    code = "sequence_not_increasing"
    title = "Reading sequence numbers must increase"


class SequenceReusedError(ConflictError):
    """A sequence number already stored for the meter arrives with other content."""

    code = "sequence_reused"
    title = "Sequence number reused with different content"


class TimestampNotIncreasingError(ValidationError):
    code = "timestamp_not_increasing"
    title = "Reading timestamps must increase with the sequence number"


class TimestampInFutureError(ValidationError):
    code = "timestamp_in_future"
    title = "Reading timestamp is in the future"


class TimestampTooOldError(ValidationError):
    code = "timestamp_too_old"
    title = "Reading timestamp is older than the retention window"


class RegistersDecreasingError(ValidationError):
    code = "registers_decreasing"
    title = "Cumulative registers must never decrease"
