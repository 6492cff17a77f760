"""Plausibility of a reading that is otherwise valid: implied power and grid quality.

These checks never reject a batch. A reading implying more power than the
meter is rated for is quarantined; an instantaneous value out of its band
raises an alert and the reading is stored as usual.
"""

from __future__ import annotations

from wattx.metering.intervals import RegisterSegment
from wattx.metering.policy import ValidationPolicy
from wattx.metering.readings import Reading
from wattx.metering.verdict import AlertKind, ReadingAlert

SECONDS_PER_HOUR = 3_600
_PERCENT = 100


def implied_power_excess(
    segment: RegisterSegment, rated_capacity_w: int, policy: ValidationPolicy
) -> str | None:
    """Why ``segment`` implies more power than the meter can carry, or ``None`` if it does not.

    At any instant power flows one way through a meter at up to its rated
    capacity, so over ``dt`` seconds import plus export cannot exceed
    ``rated × dt``. The comparison is kept in integers: energy in Wh × 3600
    (watt-seconds) against power × seconds, with the policy's margin and the
    registers' rounding tolerance.
    """
    duration_s = segment.duration_s
    throughput_wh = segment.import_wh + segment.export_wh
    tolerated_wh = throughput_wh - 2 * policy.register_resolution_wh
    allowed_ws_pct = rated_capacity_w * duration_s * (_PERCENT + policy.capacity_margin_pct)
    if tolerated_wh * SECONDS_PER_HOUR * _PERCENT <= allowed_ws_pct:
        return None
    return (
        f"{throughput_wh} Wh in {duration_s} s implies more than the rated "
        f"{rated_capacity_w} W (+{policy.capacity_margin_pct} %)"
    )


def grid_quality_alerts(reading: Reading, policy: ValidationPolicy) -> list[ReadingAlert]:
    """Alerts for the instantaneous values of ``reading`` that lie outside their band."""
    alerts: list[ReadingAlert] = []
    checks = (
        (AlertKind.VOLTAGE_OUT_OF_BAND, reading.voltage_mv, policy.voltage_band_mv),
        (AlertKind.FREQUENCY_OUT_OF_BAND, reading.frequency_millihz, policy.frequency_band_millihz),
    )
    for kind, value, (low, high) in checks:
        if value is not None and not low <= value <= high:
            alerts.append(ReadingAlert(reading.seq, kind, value, low, high))
    return alerts
