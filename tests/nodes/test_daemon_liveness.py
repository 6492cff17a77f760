"""The node's side of link liveness: TCP keepalive and a user timeout on the link socket."""

from __future__ import annotations

import socket
import sys

import pytest

from wattx.nodes.daemon.liveness import KEEPALIVE_PROBES, tune_link_socket


@pytest.mark.skipif(sys.platform != "linux", reason="the TCP options read back are Linux's")
@pytest.mark.parametrize(
    ("interval_s", "idle_s", "probe_every_s", "user_timeout_ms"),
    [
        (30, 30, 30 // KEEPALIVE_PROBES, 60_000),
        # A test's sub-second interval still sets whole seconds.
        (0.2, 1, 1, 2_000),
    ],
)
def test_the_link_socket_gives_up_on_a_dead_peer_within_a_few_heartbeat_intervals(
    interval_s: float, idle_s: int, probe_every_s: int, user_timeout_ms: int
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        tune_link_socket(sock, interval_s)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == idle_s
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == probe_every_s
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == KEEPALIVE_PROBES
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == user_timeout_ms
