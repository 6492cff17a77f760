"""Readings and batches of readings, as a meter reports them.

A reading carries the meter's two cumulative registers (energy imported from
and exported to the grid, in Wh, never decreasing), a sequence number and a
UTC timestamp, and optionally instantaneous values. Every value is an integer:
see ``docs/reading-format.md`` for the units and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

FORMAT_VERSION = 1
"""The version of the reading format that this module speaks."""


@dataclass(frozen=True, slots=True)
class Reading:
    """One sample of a meter.

    ``power_w`` is signed: positive while importing from the grid, negative
    while exporting. ``voltage_mv`` is in millivolts, ``frequency_millihz`` in
    millihertz and ``soc_permille`` (battery state of charge) in tenths of a
    percent, 0-1000.
    """

    seq: int
    ts: datetime
    import_wh: int
    export_wh: int
    power_w: int | None = None
    voltage_mv: int | None = None
    frequency_millihz: int | None = None
    soc_permille: int | None = None


@dataclass(frozen=True, slots=True)
class ReadingBatch:
    """Readings of one meter, in increasing sequence order, with the meter's signature.

    ``signature`` is the 64-byte Ed25519 signature over the canonical encoding
    of the batch without its signature (:func:`wattx.metering.canonical.canonical_batch_bytes`).
    """

    meter_id: str
    readings: tuple[Reading, ...]
    signature: bytes
    version: int = FORMAT_VERSION
    read_as: tuple[bytes, ...] | None = field(default=None, init=False, compare=False, repr=False)
    """Each reading's canonical bytes, kept by the parser that read the batch (``None``
    for a batch built in code).

    The parser writes them from the values it has just parsed and the timestamp's text,
    which its strict pattern has made the one canonical spelling: validation then need
    not format every timestamp again. Not an argument of the constructor, so
    ``dataclasses.replace`` (a batch with other readings) leaves it ``None``.
    """
