"""What validation decides about a batch: the records a verdict is made of."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from wattx.metering.intervals import RegisterSegment
from wattx.metering.readings import Reading


class QuarantineReason(StrEnum):
    """Why a well-signed, well-ordered reading is held back for an operator.

    Values are stable codes, like error codes.
    """

    POWER_ABOVE_CAPACITY = "power_above_capacity"
    """The energy since the previous reading implies more power than the meter is rated for."""


class AlertKind(StrEnum):
    """Grid-quality alerts; the reading is stored either way. Values are stable codes."""

    VOLTAGE_OUT_OF_BAND = "voltage_out_of_band"
    FREQUENCY_OUT_OF_BAND = "frequency_out_of_band"


@dataclass(frozen=True, slots=True)
class QuarantinedReading:
    """A reading kept for an operator, with why, and the energy it would add.

    ``segment`` is the interval from the previous reading to this one: its
    energy is kept with the reading but is not verified energy.
    """

    reading: Reading
    reason: QuarantineReason
    detail: str
    segment: RegisterSegment


@dataclass(frozen=True, slots=True)
class ReadingAlert:
    """An instantaneous value outside its band (inclusive ``low``..``high``)."""

    seq: int
    kind: AlertKind
    value: int
    low: int
    high: int


@dataclass(frozen=True, slots=True)
class ValidationVerdict:
    """The outcome of validating one batch that was not rejected.

    - ``accepted``: new readings to store as verified;
    - ``duplicates``: readings already stored with the same content, to
      acknowledge and not store again;
    - ``quarantined``: new readings to store for operator review;
    - ``alerts``: grid-quality alerts raised by new readings;
    - ``verified_segments``: for each accepted reading that has a predecessor,
      the interval between them, whose energy is verified;
    - ``last_reading``: the meter's newest reading once the new ones are
      stored (accepted or quarantined), the reference for the next batch;
    - ``digests``: the :func:`~wattx.metering.canonical.reading_digest` of
      every new reading (accepted or quarantined), by sequence number.
    """

    accepted: tuple[Reading, ...]
    duplicates: tuple[Reading, ...]
    quarantined: tuple[QuarantinedReading, ...]
    alerts: tuple[ReadingAlert, ...]
    verified_segments: tuple[RegisterSegment, ...]
    last_reading: Reading | None
    digests: Mapping[int, bytes] = field(default_factory=dict)
