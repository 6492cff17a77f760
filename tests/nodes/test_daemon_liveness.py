"""The node's side of link liveness: TCP keepalive and a user timeout on the link socket."""

from __future__ import annotations

import socket
import sys

import pytest

from wattx.nodes.daemon.liveness import KEEPALIVE_PROBES, tune_link_socket


@pytest.mark.skipif(sys.platform != "linux", reason="the TCP options read back are Linux's")
def test_the_link_socket_gives_up_on_a_dead_peer_within_a_few_heartbeat_intervals() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        tune_link_socket(sock, 30)
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 30
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL) == 30 // KEEPALIVE_PROBES
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT) == KEEPALIVE_PROBES
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 60_000


@pytest.mark.skipif(sys.platform != "linux", reason="the TCP options read back are Linux's")
def test_a_sub_second_test_interval_still_sets_whole_seconds() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        tune_link_socket(sock, 0.2)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 2_000
