"""Device and delivery rule violations, one stable ``code`` each."""

from __future__ import annotations

from wattx.domain.errors import ConflictError, NotFoundError, ValidationError


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
