"""The garbage collector around a service's start: off while it starts, then told to leave
what start-up built alone."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a service starts, until :func:`settle_heap`.

    Start-up imports the contract compiler, the EVM and the web stack and deploys the
    embedded chain's contracts: hundreds of thousands of objects that live as long as the
    process. The collector, run every 700 allocations, walked them again and again while
    they were made (about a tenth of a start's CPU) and found little garbage among them.
    What garbage start-up leaves waits for :func:`settle_heap`'s one collection. The
    collector is on again once this ends, whatever happened.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def settle_heap() -> None:
    """Collect start-up garbage, then leave what remains out of later full collections.

    Start-up imports the contract compiler, the solver and the web stack:
    hundreds of thousands of objects that live as long as the process. Every
    full collection of the cyclic garbage collector walked all of them (about
    0.3 s on the 2-core machine), stalling every request in flight; frozen,
    they are never walked again. Objects made afterwards (orders, sessions,
    responses) are collected as before: the collector is on again if
    :func:`collector_paused` had turned it off.
    """
    gc.collect()
    gc.freeze()
    gc.enable()
