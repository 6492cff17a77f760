"""CPU time of the benchmarked service, by asyncio task, for ``bench/api.py --task-cpu``.

A sampling profiler misleads on this service: ``py-spy`` gave FastAPI's route matching
23 % of the main thread where timing it gave 2 %, and the market writer a tenth where
it takes a third (docs/operations.md, "Single orders: lists as one parameter"). This
counts instead: every task the service's event loop makes gets its coroutine wrapped,
and each step of it (from one ``await`` that suspends to the next) is timed with the
thread's CPU clock and added to the task's coroutine name (``run_asgi`` for requests,
``MarketService._write_queued_submissions`` for the market writer). What runs outside
tasks (the loop's own callbacks: the HTTP parser, socket writes, the database driver's
protocol) is the process's CPU less the tasks'.

Loaded by Python at start-up from ``PYTHONPATH`` (this directory); it does nothing unless
``BENCH_TASK_CPU`` names the file to keep the running totals in (a JSON object
``{"process_cpu_s": ..., "tasks": {name: cpu_s}}``, replaced every 0.2 s while the
service serves). The wrapping costs about a microsecond a step.

With ``BENCH_TASK_PROFILE`` set to a task's name as counted (``MeteringService._write_queued``,
say), that task's steps alone also run under ``cProfile``, whose statistics are written to
the totals' file name plus ``.prof`` every second (``python -m pstats`` reads it).
"""

from __future__ import annotations

import asyncio
import collections
import cProfile
import itertools
import json
import os
import threading
import time
from collections.abc import Coroutine, Generator
from pathlib import Path
from typing import Any

_OUT = os.environ.get("BENCH_TASK_CPU")
_PROFILED = os.environ.get("BENCH_TASK_PROFILE")


class _Timed(Coroutine[Any, Any, Any]):
    """A coroutine that adds the CPU time of each of its steps to ``totals[name]``."""

    __slots__ = ("_coroutine", "_name", "_totals")

    def __init__(
        self, coroutine: Coroutine[Any, Any, Any], name: str, totals: collections.Counter[str]
    ) -> None:
        self._coroutine = coroutine
        self._name = name
        self._totals = totals

    def send(self, value: Any) -> Any:
        started = time.thread_time()
        try:
            return self._coroutine.send(value)
        finally:
            self._totals[self._name] += time.thread_time() - started

    def throw(self, *args: Any) -> Any:
        started = time.thread_time()
        try:
            return self._coroutine.throw(*args)
        finally:
            self._totals[self._name] += time.thread_time() - started

    def close(self) -> None:
        self._coroutine.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self  # type: ignore[return-value]

    def __iter__(self) -> _Timed:
        return self

    def __next__(self) -> Any:
        return self.send(None)


class _Profile:
    """One ``cProfile`` for the steps of every task of one name; ``write`` runs on the event
    loop between steps (a callback, never inside one), so never while it profiles."""

    def __init__(self, out: Path) -> None:
        self.profiler = cProfile.Profile()
        self._out = out

    def write(self) -> None:
        self.profiler.dump_stats(self._out)


class _Profiled(_Timed):
    """A timed coroutine whose steps also run under ``profile``."""

    __slots__ = ("_profile",)

    def __init__(
        self,
        coroutine: Coroutine[Any, Any, Any],
        name: str,
        totals: collections.Counter[str],
        profile: _Profile,
    ) -> None:
        super().__init__(coroutine, name, totals)
        self._profile = profile

    def send(self, value: Any) -> Any:
        self._profile.profiler.enable()
        try:
            return super().send(value)
        finally:
            self._profile.profiler.disable()

    def throw(self, *args: Any) -> Any:
        self._profile.profiler.enable()
        try:
            return super().throw(*args)
        finally:
            self._profile.profiler.disable()


def _install(out: Path) -> None:
    import uvicorn

    totals: collections.Counter[str] = collections.Counter()
    profile = _Profile(out.with_name(out.name + ".prof"))

    def factory(
        loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, Any], **kwargs: Any
    ) -> asyncio.Task[Any]:
        name = getattr(coroutine, "__qualname__", type(coroutine).__name__)
        if name == _PROFILED:
            return asyncio.Task(_Profiled(coroutine, name, totals, profile), loop=loop, **kwargs)
        return asyncio.Task(_Timed(coroutine, name, totals), loop=loop, **kwargs)

    def keep_totals(loop: asyncio.AbstractEventLoop) -> None:
        scratch = out.with_name(out.name + ".new")
        for tick in itertools.count(1):
            time.sleep(0.2)
            snapshot = {"process_cpu_s": time.process_time(), "tasks": dict(totals)}
            scratch.write_text(json.dumps(snapshot))
            scratch.replace(out)
            if _PROFILED and tick % 5 == 0:
                loop.call_soon_threadsafe(profile.write)

    serve = uvicorn.Server.serve

    async def serve_counting(self: uvicorn.Server, *args: Any, **kwargs: Any) -> None:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(factory)  # type: ignore[arg-type]
        threading.Thread(target=keep_totals, args=(loop,), daemon=True).start()
        await serve(self, *args, **kwargs)

    uvicorn.Server.serve = serve_counting  # type: ignore[method-assign]


if _OUT:
    _install(Path(_OUT))
