"""Waiting for a ``wattx`` process a test started to answer ``GET /readyz`` with 200."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx


def wait_ready(
    url: str,
    process: subprocess.Popen[Any],
    within_s: float,
    tail: Callable[[], str] = lambda: "",
) -> None:
    """Poll ``url``/readyz every 0.2 s until it answers 200; fail (with ``tail()``, the
    process's last output) if the process exits or ``within_s`` seconds pass.

    One client serves every poll: each new one loads the CA bundle (35 ms of CPU).
    """
    deadline = time.monotonic() + within_s
    with httpx.Client(timeout=1) as http:
        while time.monotonic() < deadline:
            assert process.poll() is None, f"wattx up exited: {tail()}"
            with contextlib.suppress(httpx.HTTPError):
                if http.get(f"{url}/readyz").status_code == 200:
                    return
            time.sleep(0.2)
    raise AssertionError(f"wattx up did not become ready: {tail()}")
