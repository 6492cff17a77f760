"""Device and delivery rule violations, one stable ``code`` each."""

from __future__ import annotations

from wattx.domain.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)


class InvalidDeviceError(ValidationError):
    code = "invalid_device"
    title = "The device's kind, limits or protocol do not fit together"


class DeviceNotFoundError(NotFoundError):
    code = "device_not_found"
    title = "No such device (or not one of yours)"


class SetpointOutOfLimitsError(ValidationError):
    code = "setpoint_out_of_limits"
    title = "A setpoint is outside the device's rated power, capacity or reserve"


class DuplicateCommandError(ConflictError):
    code = "duplicate_command"
    title = "A command with this id exists already"


class StaleCommandError(ConflictError):
    code = "stale_command"
    title = "The command has expired"


class DeliveryTransitionError(ConflictError):
    code = "delivery_transition_invalid"
    title = "The trade's delivery cannot move to that state"


class DeliveryGracePendingError(ConflictError):
    code = "delivery_grace_pending"
    title = "The epoch's physical trades wait for late meter readings"


class DeliveryNotFoundError(NotFoundError):
    code = "delivery_not_found"
    title = "No physical delivery for that trade (or not one of yours)"


class DeliveryCancelForbiddenError(PermissionDeniedError):
    code = "delivery_cancel_forbidden"
    title = "Only the trade's seller or an operator may cancel its delivery"


class TelemetryContradictsMeterError(ValidationError):
    code = "telemetry_contradicts_meter"
    title = "The device's reported energy contradicts its meter's verified readings"


class MeterEpochPendingError(ConflictError):
    code = "meter_epoch_pending"
    title = "The meter has no verified energy for that epoch yet"


class DeliveryBalanceShortError(ConflictError):
    code = "delivery_balance_short"
    title = "A balance moved while the epoch was measured; the batch is measured again"


class InvalidScheduleError(ValidationError):
    code = "invalid_schedule"
    title = "The day-ahead schedule cannot be made from that forecast"
