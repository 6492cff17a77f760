"""A node's desired-state configuration: what an operator may set on a running node,
versioned, and checked before it leaves the service (and again on the node).

The node applies a version atomically (its ``node.json`` replaced in one rename),
reports the version it runs, and rolls back to the last good version by itself
when its link does not come back within :data:`ROLLBACK_S` seconds of a change.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from wattx.nodes.errors import InvalidNodeConfigError

ROLLBACK_S = 60.0
"""A change whose link does not come back within this is rolled back by the node."""

HEARTBEAT_RANGE_S = (5, 300)
CONTROL_CYCLE_RANGE_S = (0.1, 60.0)
MAX_URL = 200

SETTABLE = ("server", "heartbeat_interval_s", "control_cycle_s")
"""The keys of ``node.json`` a desired config may set; the rest (node id, data
directory, the buffer) are the node's own and never change this way."""


def check_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config if every key is settable and every value in range."""
    if not config:
        raise InvalidNodeConfigError("a config sets at least one key", settable=list(SETTABLE))
    unknown = sorted(set(config) - set(SETTABLE))
    if unknown:
        raise InvalidNodeConfigError(
            "these keys cannot be set", unknown=unknown, settable=list(SETTABLE)
        )
    if "server" in config:
        server = config["server"]
        parts = urlsplit(server) if isinstance(server, str) else None
        if (
            parts is None
            or len(server) > MAX_URL
            or parts.scheme not in ("http", "https")
            or not parts.hostname
        ):
            raise InvalidNodeConfigError(f"server is an http(s) URL of at most {MAX_URL} chars")
    if "heartbeat_interval_s" in config:
        value = config["heartbeat_interval_s"]
        low, high = HEARTBEAT_RANGE_S
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidNodeConfigError(
                f"heartbeat_interval_s is a whole number from {low} to {high}"
            )
    if "control_cycle_s" in config:
        value = config["control_cycle_s"]
        low_f, high_f = CONTROL_CYCLE_RANGE_S
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidNodeConfigError("control_cycle_s is a number of seconds")
        if not low_f <= value <= high_f:
            raise InvalidNodeConfigError(f"control_cycle_s lies from {low_f} to {high_f}")
    return config


def check_apply_payload(payload: dict[str, Any]) -> None:
    """The payload of a ``config.apply`` command: ``{"version": n, "config": {...}}``."""
    if set(payload) != {"version", "config"}:
        raise InvalidNodeConfigError("a config.apply payload is {version, config}")
    version = payload["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidNodeConfigError("version is a positive whole number")
    if not isinstance(payload["config"], dict):
        raise InvalidNodeConfigError("config is an object")
    check_config(payload["config"])
