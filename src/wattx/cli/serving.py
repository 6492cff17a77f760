"""Serving the API from a command: bind first, say where it listens only once it does."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable, Iterator

import uvicorn
from fastapi import FastAPI

from wattx.api.logging import drop_below
from wattx.api.server import server_config
from wattx.cli.errors import fail
from wattx.cli.heap import settle_heap
from wattx.config import Settings


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host:port``, or one clear line and exit 1."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            fail(
                f"port {port} on {host} is already in use (another wattx?): "
                "choose another with --port or WATTX_PORT"
            )
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    except (OverflowError, socket.gaierror) as exc:
        sock.close()
        fail(f"cannot listen on {host}:{port}: {exc}")
    return sock


def server_for(app: FastAPI, settings: Settings, *, handle_signals: bool = True) -> uvicorn.Server:
    """A uvicorn server for ``app`` configured from ``settings`` (trusted proxies, no
    ``server`` header); without ``handle_signals`` Ctrl-C is left to the caller
    (asyncio cancels its main task), which then stops the server itself."""
    config = server_config(app, settings, lifespan="on")
    return uvicorn.Server(config) if handle_signals else _SignalBlindServer(config)


class _SignalBlindServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def quiet() -> None:
    """Stopping on Ctrl-C: what is cut short on the way out is not an error to report.

    Both kinds of logger: uvicorn's go through the standard library, the service's
    through structlog (a request still in flight that fails as the service closes logs
    ``unhandled_error`` there)."""
    for name in ("uvicorn", "uvicorn.error", "wattx"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    drop_below(logging.CRITICAL)


async def start(
    server: uvicorn.Server, sock: socket.socket, on_listening: Callable[[], None]
) -> asyncio.Task[None]:
    """Start serving on ``sock``; call ``on_listening`` once the app has started.

    Returns the serving task. A start-up that fails (the app's lifespan
    raised) is one line and exit 1; uvicorn has logged the reason.
    """
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            break
        await asyncio.sleep(0.05)
    if not server.started:
        if not serving.cancelled() and serving.exception() is not None:
            fail(f"the service did not start: {serving.exception()}")
        fail("the service did not start (see the log above)")
    settle_heap()
    on_listening()
    return serving
