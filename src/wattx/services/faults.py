"""Fault injection for crash tests: off unless ``WATTX_FAULT_INJECT`` names a point.

A service calls :func:`fault_point` at a named point of its work, e.g.
``after_chain_tx:mint`` between a chain transaction and the database write that
records it. When the environment variable ``WATTX_FAULT_INJECT`` lists that
point (comma-separated), the process ends there at once with exit code 137, as
if killed with ``kill -9``: no cleanup, no further database write. Unset (the
default) it does nothing. The variable is read at each point, so a test can
set it on a running process's environment before the point is reached.
"""

from __future__ import annotations

import os
import sys

FAULT_INJECT_ENV = "WATTX_FAULT_INJECT"
KILLED_EXIT_CODE = 137

AFTER_CHAIN_TX_MINT = "after_chain_tx:mint"
"""After the oracle batch is mined, before the mints are recorded."""

AFTER_CHAIN_TX_SETTLE = "after_chain_tx:settle"
"""After ``settle_epoch`` is mined, before the outbox row is confirmed."""

FAULT_POINTS = frozenset({AFTER_CHAIN_TX_MINT, AFTER_CHAIN_TX_SETTLE})


def injected_faults() -> frozenset[str]:
    """The points ``WATTX_FAULT_INJECT`` names (empty when unset)."""
    raw = os.environ.get(FAULT_INJECT_ENV, "")
    return frozenset(part.strip() for part in raw.split(",") if part.strip())


def fault_point(name: str) -> None:
    """End the process here (exit code 137) if ``WATTX_FAULT_INJECT`` names ``name``."""
    if name in injected_faults():
        sys.stderr.write(f"wattx: fault injected at {name}, exiting with {KILLED_EXIT_CODE}\n")
        sys.stderr.flush()
        os._exit(KILLED_EXIT_CODE)
