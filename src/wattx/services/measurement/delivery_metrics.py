"""Prometheus instruments of physical delivery: refused device input and refunds."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class DeliveryMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.refused = Counter(
            "wattx_device_input_refused_total",
            "Device commands and telemetry refused, by problem code "
            "(duplicate_command, stale_command, setpoint_out_of_limits, "
            "telemetry_contradicts_meter, ...)",
            ["code"],
            registry=self.registry,
        )
        self.contradictions_wh = Counter(
            "wattx_device_telemetry_contradiction_wh_total",
            "Wh by which device-reported energy missed its meter's verified energy "
            "beyond the tolerance",
            ["direction"],
            registry=self.registry,
        )
        self.refunds = Counter(
            "wattx_delivery_refunds_total",
            "Physical deliveries refunded before measurement, by event (cancel, timeout, fault)",
            ["event"],
            registry=self.registry,
        )
