"""Delivery epochs: the market's unit of time.

Time is cut into epochs of a fixed length counted from the Unix epoch, so the
epoch id of an instant is ``floor(unix_seconds / length_seconds)`` and every
part of the system agrees on it without coordination. Gate closure is a lead
time before the epoch starts; orders for an epoch are accepted until then.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Protocol

from wattx.domain.errors import ValidationError

_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class EpochClock(Protocol):
    """Where the current time comes from; simulations inject an accelerated one."""

    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class DeliveryEpoch:
    id: int
    start: datetime
    end: datetime
    gate_closure: datetime


@dataclass(frozen=True, slots=True)
class EpochSchedule:
    """Epoch length and gate-closure lead, both in whole seconds."""

    length_s: int = 900
    gate_closure_lead_s: int = 300

    def __post_init__(self) -> None:
        if self.length_s <= 0:
            raise ValidationError("epoch length must be positive", length_s=self.length_s)
        if self.gate_closure_lead_s < 0:
            raise ValidationError("gate closure lead must be >= 0")

    def epoch_id_at(self, at: datetime) -> int:
        """The id of the epoch that is being delivered at ``at``."""
        return unix_seconds(at) // self.length_s

    def epoch(self, epoch_id: int) -> DeliveryEpoch:
        return _delivery_epoch(self.length_s, self.gate_closure_lead_s, epoch_id)

    def is_open_for_orders(self, epoch_id: int, at: datetime) -> bool:
        return at < self.epoch(epoch_id).gate_closure

    def first_open_epoch(self, at: datetime) -> int:
        """The earliest epoch whose gate has not closed at ``at``."""
        epoch_id = self.epoch_id_at(at) + 1
        while not self.is_open_for_orders(epoch_id, at):
            epoch_id += 1
        return epoch_id


@lru_cache(maxsize=4096)
def _delivery_epoch(length_s: int, gate_closure_lead_s: int, epoch_id: int) -> DeliveryEpoch:
    """An epoch's times, kept for the epochs asked of lately: the market asks for the same
    few epochs once or twice per order, and an epoch (frozen) never changes."""
    start = _UNIX_EPOCH + timedelta(seconds=epoch_id * length_s)
    return DeliveryEpoch(
        id=epoch_id,
        start=start,
        end=start + timedelta(seconds=length_s),
        gate_closure=start - timedelta(seconds=gate_closure_lead_s),
    )


def unix_seconds(at: datetime) -> int:
    """Whole seconds from 1970-01-01 UTC to ``at`` (a part second is dropped), in exact
    integer arithmetic."""
    if at.tzinfo is None:
        raise ValidationError("times must be timezone-aware UTC")
    delta = at - _UNIX_EPOCH
    return delta.days * 86_400 + delta.seconds
