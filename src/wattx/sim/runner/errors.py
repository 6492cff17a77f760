"""Errors of the simulation runner."""

from __future__ import annotations

from wattx.domain import DomainError


class ServiceRequestError(DomainError):
    """The service refused a request the runner needs to go on (set-up, orders, closure)."""

    code = "simulation_service_request_failed"
    http_status = 502
