"""Stopping the daemon's tasks for good.

A cancellation is a single request: code that catches it and goes on keeps a task
running. Python 3.11's ``asyncio.wait_for`` is such code (it returns the result and
drops the cancellation when the awaited thing completes in the same step), and the
MQTT client library uses it to wait for the broker's acknowledgements. A bridge
cancelled as a PUBACK arrives would go back to its message loop, and a daemon that
waits for it would never stop (Ctrl-C ignored, a test hung). So the daemon cancels
again until its tasks are done, and its own code waits with ``asyncio.timeout``,
which keeps the cancellation (``docs/architecture.md``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

RECANCEL_S = 0.1
"""How long a cancelled task gets to end before it is cancelled again."""


async def stop_tasks(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait until every one has ended, cancelling again any that
    carried on. Their outcomes are collected (an exception a task ended with is not
    raised here, as with ``gather(..., return_exceptions=True)``)."""
    every = list(tasks)
    pending = {task for task in every if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=RECANCEL_S)
    for task in every:
        if not task.cancelled():
            task.exception()  # retrieved: not reported as "never retrieved"
