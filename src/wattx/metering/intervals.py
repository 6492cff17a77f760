"""Interval energy: cumulative registers turned into energy per delivery epoch.

The energy between two readings is the difference of their registers. When
that interval straddles epoch boundaries, the energy is split in proportion to
the time spent in each epoch, in whole Wh, with cumulative rounding: the first
``k`` epochs of a segment together get ``floor(E * t_k / T)``, where ``t_k``
is the time the segment has spent in them and ``T`` its length. Every epoch's
share is thus within 1 Wh of its exact proportion and the shares add up to
``E`` exactly: nothing is created or lost by the split.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from wattx.domain.epochs import EpochSchedule, unix_seconds
from wattx.domain.errors import ValidationError
from wattx.metering.readings import Reading


@dataclass(frozen=True, slots=True)
class RegisterSegment:
    """The energy that flowed through a meter from ``start`` to ``end`` (exclusive)."""

    start: datetime
    end: datetime
    import_wh: int
    export_wh: int

    def __post_init__(self) -> None:
        if not self.start < self.end:
            raise ValidationError("a segment must end after it starts")
        if self.import_wh < 0 or self.export_wh < 0:
            raise ValidationError("the energy of a segment is never negative")

    @property
    def duration_s(self) -> int:
        """The length of the segment in whole seconds."""
        delta = self.end - self.start
        return delta.days * 86_400 + delta.seconds

    @classmethod
    def between(cls, previous: Reading, reading: Reading) -> RegisterSegment:
        """The segment from ``previous`` to the later ``reading`` of the same meter."""
        return cls(
            start=previous.ts,
            end=reading.ts,
            import_wh=reading.import_wh - previous.import_wh,
            export_wh=reading.export_wh - previous.export_wh,
        )


@dataclass(frozen=True, slots=True)
class EpochEnergy:
    """A meter's energy in one delivery epoch."""

    epoch_id: int
    import_wh: int
    export_wh: int

    @property
    def net_export_wh(self) -> int:
        """Export minus import; negative when the meter drew more than it fed in."""
        return self.export_wh - self.import_wh


def split_segment(segment: RegisterSegment, schedule: EpochSchedule) -> list[EpochEnergy]:
    """The energy of ``segment`` per epoch it overlaps, in epoch order."""
    return [
        EpochEnergy(epoch_id, imported, exported)
        for epoch_id, imported, exported in _split_seconds(
            _unix_seconds(segment.start),
            _unix_seconds(segment.end),
            segment.import_wh,
            segment.export_wh,
            schedule.length_s,
        )
    ]


def _split_seconds(
    start_s: int, end_s: int, import_wh: int, export_wh: int, epoch_length_s: int
) -> list[tuple[int, int, int]]:
    """``(epoch_id, import_wh, export_wh)`` per epoch of ``[start_s, end_s)``, by the
    cumulative rounding of the module docstring."""
    first_epoch = start_s // epoch_length_s
    last_epoch = (end_s - 1) // epoch_length_s
    if first_epoch == last_epoch:
        # Most segments (readings every few seconds or minutes) lie in one epoch.
        return [(first_epoch, import_wh, export_wh)]
    length_s = end_s - start_s
    shares: list[tuple[int, int, int]] = []
    import_before = export_before = 0
    for epoch_id in range(first_epoch, last_epoch + 1):
        elapsed_s = min(end_s, (epoch_id + 1) * epoch_length_s) - start_s
        import_through = import_wh * elapsed_s // length_s
        export_through = export_wh * elapsed_s // length_s
        shares.append((epoch_id, import_through - import_before, export_through - export_before))
        import_before, export_before = import_through, export_through
    return shares


def epoch_energies(
    segments: Iterable[RegisterSegment], schedule: EpochSchedule
) -> list[EpochEnergy]:
    """The total energy of ``segments`` per epoch, in epoch order.

    Every epoch a segment overlaps is listed, even with zero energy; epochs no
    segment overlaps are absent.
    """
    totals: dict[int, list[int]] = {}
    # Consecutive segments of a meter share a bound (one reading ends one segment and
    # starts the next): its seconds are worked out once. This runs for every reading.
    previous_end: datetime | None = None
    previous_end_s = 0
    length_s = schedule.length_s
    for segment in segments:
        shared = segment.start is previous_end
        start_s = previous_end_s if shared else _unix_seconds(segment.start)
        previous_end, previous_end_s = segment.end, _unix_seconds(segment.end)
        epoch_id = start_s // length_s
        if epoch_id == (previous_end_s - 1) // length_s:
            # Most segments lie in one epoch (_split_seconds' first case, without a list).
            total = totals.get(epoch_id)
            if total is None:
                totals[epoch_id] = [segment.import_wh, segment.export_wh]
            else:
                total[0] += segment.import_wh
                total[1] += segment.export_wh
            continue
        for epoch_id, imported, exported in _split_seconds(
            start_s, previous_end_s, segment.import_wh, segment.export_wh, length_s
        ):
            total = totals.get(epoch_id)
            if total is None:
                totals[epoch_id] = [imported, exported]
            else:
                total[0] += imported
                total[1] += exported
    return [
        EpochEnergy(epoch_id, imported, exported)
        for epoch_id, (imported, exported) in sorted(totals.items())
    ]


def _unix_seconds(at: datetime) -> int:
    if at.microsecond != 0 or at.tzinfo is None:
        raise ValidationError("segment bounds must be timezone-aware and in whole seconds")
    return unix_seconds(at)
