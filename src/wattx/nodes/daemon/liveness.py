"""How a node finds out that its link is dead, at almost no cost to the service.

The service sends no pings (it closes a link whose heartbeats stop). The node relies on
TCP first: its link socket keeps keepalive probes going while the link is quiet and gives
up on data left unacknowledged for two heartbeat intervals (``TCP_USER_TIMEOUT``; one
would give up during a cellular link's longer retransmission pauses), so a dead service
host, a cut path or a lost NAT mapping ends the link within about three heartbeat
intervals. The service's kernel answers both; the service process never wakes for them.
A WebSocket ping every :data:`PING_EVERY_HEARTBEATS` heartbeats checks the rest: a service
that holds the connection but whose process no longer answers. (A ping with every
heartbeat made the service write a pong on every link every interval: with thousands of
links, the largest single cost of their heartbeats.)
"""

from __future__ import annotations

import socket

PING_EVERY_HEARTBEATS = 10
"""A WebSocket ping goes with the first heartbeat of a link and every tenth after it."""

KEEPALIVE_PROBES = 3


def tune_link_socket(sock: socket.socket, heartbeat_interval_s: float) -> None:
    """Keepalive and user timeout on the link's TCP socket, each set where the platform
    has it (Linux has all; elsewhere the pings alone find a dead link)."""
    interval = max(1, int(heartbeat_interval_s))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    options = {
        "TCP_KEEPIDLE": interval,
        "TCP_KEEPINTVL": max(1, interval // KEEPALIVE_PROBES),
        "TCP_KEEPCNT": KEEPALIVE_PROBES,
        "TCP_USER_TIMEOUT": 2 * interval * 1000,
    }
    for name, value in options.items():
        option = getattr(socket, name, None)
        if option is not None:
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
