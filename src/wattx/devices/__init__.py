"""Devices and physical delivery: the pure core.

Device kinds and limits (:mod:`.model`), the trade's delivery state machine
(:mod:`.lifecycle`), the allocation of metered energy to trades and the
imbalance rule (:mod:`.allocation`), and delivery plans (:mod:`.plans`);
battery scheduling (:mod:`.scheduling`) and the standard device protocols
(:mod:`.protocols`). No I/O in the core; the use cases live in
:mod:`wattx.services.measurement.delivery`.
"""
