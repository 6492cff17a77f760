"""The value rules of every field of the reading format.

The parser applies them to what arrives and the signer to what it is asked to
sign, so a batch wattx signs is always one it would accept as well formed.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from wattx.metering.errors import MalformedReadingBatchError
from wattx.metering.readings import Reading

MAX_SAFE_INTEGER = 2**53 - 1
"""The largest integer I-JSON (RFC 7493), and so JCS, carries exactly."""

MAX_SOC_PERMILLE = 1000
SIGNATURE_SIZE = 64
PUBLIC_KEY_SIZE = 32

METER_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
"""Meter ids are 1-64 characters of a plain ASCII alphabet.

Restricting the alphabet keeps the canonical encoding free of escaping and of
Unicode normalisation questions, which JCS leaves to the signer.
"""


def check_meter_id(meter_id: str) -> None:
    if METER_ID_PATTERN.fullmatch(meter_id) is None:
        raise MalformedReadingBatchError(
            "meter_id must be 1-64 characters of A-Z a-z 0-9 . _ : -", field="meter_id"
        )


def check_reading(reading: Reading, index: int) -> None:
    """Raise :class:`MalformedReadingBatchError` unless every value of ``reading`` is in range."""
    check_reading_values(reading, index)
    _check_timestamp(reading.ts, index)


def check_reading_values(reading: Reading, index: int) -> None:
    """:func:`check_reading` without the timestamp, for a parser whose timestamps are UTC
    whole seconds by their pattern."""
    # The field's name (``readings[3].seq``) is only spelled out for an error: this runs for
    # every reading ingested.
    _check_range(reading.seq, 0, MAX_SAFE_INTEGER, index, "seq")
    _check_range(reading.import_wh, 0, MAX_SAFE_INTEGER, index, "import_wh")
    _check_range(reading.export_wh, 0, MAX_SAFE_INTEGER, index, "export_wh")
    if reading.power_w is not None:
        _check_range(reading.power_w, -MAX_SAFE_INTEGER, MAX_SAFE_INTEGER, index, "power_w")
    if reading.voltage_mv is not None:
        _check_range(reading.voltage_mv, 0, MAX_SAFE_INTEGER, index, "voltage_mv")
    if reading.frequency_millihz is not None:
        _check_range(reading.frequency_millihz, 0, MAX_SAFE_INTEGER, index, "frequency_millihz")
    if reading.soc_permille is not None:
        _check_range(reading.soc_permille, 0, MAX_SOC_PERMILLE, index, "soc_permille")


def _check_range(value: int, low: int, high: int, index: int, name: str) -> None:
    # bool is an int in Python but never a number in the format.
    if type(value) is not int or not low <= value <= high:
        field = f"readings[{index}].{name}"
        raise MalformedReadingBatchError(
            f"{field} must be an integer in {low}..{high}", field=field, value=value
        )


_ZERO = timedelta(0)


def _check_timestamp(ts: datetime, index: int) -> None:
    if ts.utcoffset() != _ZERO or ts.microsecond != 0:
        field = f"readings[{index}].ts"
        raise MalformedReadingBatchError(
            f"{field} must be a UTC time in whole seconds", field=field
        )
