"""``wattx up`` serves on uvloop, as ``uvicorn.run`` would, not on the standard loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvloop

from wattx.cli import service as service_commands


def test_up_serves_on_uvloop(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[type[asyncio.AbstractEventLoop]] = []

    async def prepare(_settings: Any) -> bool:
        return False

    async def serve(*_args: Any) -> None:
        seen.append(type(asyncio.get_running_loop()))

    monkeypatch.setattr(service_commands, "_prepare", prepare)
    monkeypatch.setattr(service_commands, "_serve", serve)
    monkeypatch.setattr("wattx.cli.serving.bind", lambda host, port: None)
    monkeypatch.setattr("wattx.api.app.create_app", lambda settings: None)
    service_commands.up(host="127.0.0.1", port=1)
    assert seen == [uvloop.Loop]
