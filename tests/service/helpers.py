"""Assertions and helpers shared by the service tests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import httpx
import pytest

from wattx.services.trading.market import MarketService


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert {"type", "title", "detail", "instance"} <= body.keys()


FLAT_ZONE = {
    "id": "main",
    "name": "Main feeder",
    "tariff": [{"start_hour": 0, "feed_in": 50_000, "retail": 300_000}],
}


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """``code`` (dedented) in a child Python process that must succeed: for checks that
    change process-wide state (the collector, logging) the test process must keep."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def writer_group_sizes(monkeypatch: pytest.MonkeyPatch, market: MarketService) -> list[int]:
    """The size of each group the market writer takes from now on, in order: each is one
    write transaction (a request's other writes, such as its session's, are not counted)."""
    sizes: list[int] = []
    real_batch = market._submit_batch

    async def counting_batch(batch: Any) -> Any:
        sizes.append(len(batch))
        return await real_batch(batch)

    monkeypatch.setattr(market, "_submit_batch", counting_batch)
    return sizes
