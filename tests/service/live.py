"""The service on a real port: a uvicorn server in the test's event loop (for streaming
responses), or a real `wattx up` process (:class:`Up`, for tests of several replicas)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from support.ready import wait_ready
from wattx.api.server import server_config
from wattx.config import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def serving(
    app: FastAPI, settings: Settings | None = None, *, port: int | None = None
) -> AsyncIterator[str]:
    """Serve ``app`` (lifespan included) on ``port`` or a free one, as ``wattx up``
    would with ``settings`` (the defaults when ``None``); yields the base URL."""
    port = port or free_port()
    chosen = (settings or Settings()).model_copy(update={"host": "127.0.0.1", "port": port})
    server = uvicorn.Server(server_config(app, chosen, lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def wattx_cli(*args: str) -> list[str]:
    """The command line of ``wattx *args`` with this interpreter."""
    return [sys.executable, "-m", "wattx.cli.main", *args]


class Up:
    """One real `wattx up` process, started at once with ``env`` on a free port.

    Its stderr goes to ``log`` when given (and its tail into the failure message),
    else nowhere.
    """

    def __init__(self, env: dict[str, str], log: Path | None = None) -> None:
        self.env = {**env, "WATTX_PORT": str(free_port())}
        self.url = f"http://127.0.0.1:{self.env['WATTX_PORT']}"
        self.log = log
        with contextlib.ExitStack() as stack:
            sink = stack.enter_context(log.open("wb")) if log is not None else subprocess.DEVNULL
            self.process = subprocess.Popen(
                wattx_cli("up"), env=self.env, stdout=subprocess.DEVNULL, stderr=sink
            )

    def _tail(self) -> str:
        return self.log.read_text()[-2000:] if self.log is not None else ""

    def wait_ready(self, within_s: float) -> None:
        """Wait until ``/readyz`` answers 200 (start-up deploys the contracts: minutes on
        a loaded shared machine, so each test gives its own bound)."""
        wait_ready(self.url, self.process, within_s, self._tail)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 20 s; nothing if it has ended already."""
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
