"""Errors the simulator raises, each with a stable ``code``."""

from __future__ import annotations

from wattx.domain.errors import ConflictError, DomainError, ValidationError


class SimulationConfigError(ValidationError):
    """A scenario, a time grid or a device specification that cannot be simulated."""

    code = "simulation_config_invalid"
    http_status = 422
    title = "Invalid simulation configuration"


class EnergyBalanceError(DomainError):
    """Production + imports did not equal consumption + exports + storage + losses.

    This is an internal invariant: it means the simulator lost or invented
    energy, so it is a server-side failure, not a caller's mistake.
    """

    code = "energy_balance_not_closed"
    http_status = 500
    title = "Energy balance does not close"


class StepOrderError(ConflictError):
    """Epochs are delivered one after another; a step was skipped or repeated."""

    code = "simulation_step_out_of_order"
    http_status = 409
    title = "Simulation step out of order"
