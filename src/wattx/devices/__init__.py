"""Devices and physical delivery: the pure core.

Device kinds and limits (:mod:`.model`), the trade's delivery state machine
(:mod:`.lifecycle`), the allocation of metered energy to trades and the
imbalance rule (:mod:`.allocation`), and delivery plans (:mod:`.plans`). No
I/O here; the use cases live in :mod:`wattx.services.delivery`.
"""
