"""Plausibility of a reading that is otherwise valid: implied power and grid quality.

These checks never reject a batch. A reading implying more power than the
meter is rated for is quarantined; an instantaneous value out of its band
raises an alert and the reading is stored as usual.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

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
    return implied_power_check(rated_capacity_w, policy)(segment)


def implied_power_check(
    rated_capacity_w: int, policy: ValidationPolicy
) -> Callable[[RegisterSegment], str | None]:
    """:func:`implied_power_excess` for one meter and policy, their figures worked out once
    (it runs for every reading of a batch)."""
    tolerance_wh = 2 * policy.register_resolution_wh
    allowed_w_pct = rated_capacity_w * (_PERCENT + policy.capacity_margin_pct)

    def excess(segment: RegisterSegment) -> str | None:
        duration_s = segment.duration_s
        throughput_wh = segment.import_wh + segment.export_wh
        if (
            throughput_wh - tolerance_wh
        ) * SECONDS_PER_HOUR * _PERCENT <= allowed_w_pct * duration_s:
            return None
        return (
            f"{throughput_wh} Wh in {duration_s} s implies more than the rated "
            f"{rated_capacity_w} W (+{policy.capacity_margin_pct} %)"
        )

    return excess


def grid_quality_alerts(reading: Reading, policy: ValidationPolicy) -> list[ReadingAlert]:
    """Alerts for the instantaneous values of ``reading`` that lie outside their band."""
    return grid_quality_alerts_of((reading,), policy)


def grid_quality_alerts_of(
    readings: Iterable[Reading], policy: ValidationPolicy
) -> list[ReadingAlert]:
    """:func:`grid_quality_alerts` of each of ``readings``, in order: the bands read once,
    and nothing built for a reading in band (it runs for every reading of a batch)."""
    voltage_low, voltage_high = policy.voltage_band_mv
    frequency_low, frequency_high = policy.frequency_band_millihz
    alerts: list[ReadingAlert] = []
    for reading in readings:
        voltage = reading.voltage_mv
        if voltage is not None and not voltage_low <= voltage <= voltage_high:
            alerts.append(
                ReadingAlert(
                    reading.seq, AlertKind.VOLTAGE_OUT_OF_BAND, voltage, voltage_low, voltage_high
                )
            )
        frequency = reading.frequency_millihz
        if frequency is not None and not frequency_low <= frequency <= frequency_high:
            alerts.append(
                ReadingAlert(
                    reading.seq,
                    AlertKind.FREQUENCY_OUT_OF_BAND,
                    frequency,
                    frequency_low,
                    frequency_high,
                )
            )
    return alerts
