"""The operator's knobs for reading validation, with the defaults wattx ships."""

from __future__ import annotations

from dataclasses import dataclass

from wattx.domain.errors import ValidationError

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, slots=True)
class ValidationPolicy:
    """Limits applied to every batch of readings.

    - ``max_batch_size``: readings per batch; larger batches are refused
      before their signature is checked, so a large batch costs nothing.
    - ``max_future_skew_s``: how far a reading may be ahead of the service clock.
    - ``retention_s``: readings older than this are refused; stored readings
      are kept at least this long, so duplicates are recognised within it.
    - ``capacity_margin_pct``: head-room above the rated capacity before the
      power a reading implies counts as implausible (meter accuracy, short
      overloads).
    - ``register_resolution_wh``: the step of the registers. A register that
      truncates to whole Wh can show up to one step more than flowed in an
      interval, which over a short interval is a large power; that much is
      tolerated per register.
    - ``voltage_band_mv`` and ``frequency_band_millihz``: inclusive bands
      outside which a reading raises an alert (defaults: EN 50160, 230 V
      ± 10 % and 50 Hz ± 1 %).
    """

    max_batch_size: int = 1_000
    max_future_skew_s: int = 60
    retention_s: int = 30 * SECONDS_PER_DAY
    capacity_margin_pct: int = 10
    register_resolution_wh: int = 1
    voltage_band_mv: tuple[int, int] = (207_000, 253_000)
    frequency_band_millihz: tuple[int, int] = (49_500, 50_500)

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ValidationError("max_batch_size must be at least 1")
        if self.max_future_skew_s < 0 or self.retention_s <= 0:
            raise ValidationError("the future skew must be >= 0 and the retention window > 0")
        if self.capacity_margin_pct < 0 or self.register_resolution_wh < 0:
            raise ValidationError("capacity margin and register resolution must be >= 0")
        for name, (low, high) in (
            ("voltage_band_mv", self.voltage_band_mv),
            ("frequency_band_millihz", self.frequency_band_millihz),
        ):
            if low > high:
                raise ValidationError(f"{name} must be (low, high) with low <= high")
