"""A real uvicorn server in the test's event loop, for streaming responses."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

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
