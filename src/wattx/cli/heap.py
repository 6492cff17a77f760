"""The garbage collector around a service's start: seldom while it starts, then told to
leave what start-up built alone."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

START_UP_THRESHOLDS = (50_000, 20, 100)
"""The collector's thresholds while a service starts (the interpreter's are 700, 10, 10)."""


@contextlib.contextmanager
def start_up_collections() -> Iterator[None]:
    """Collect seldom while a service starts, until :func:`settle_heap`.

    Start-up imports the contract compiler, the EVM and the web stack and deploys the
    embedded chain's contracts: hundreds of thousands of objects that live as long as the
    process. The collector, run every 700 allocations, walked them again and again while
    they were made (about a tenth of a start's CPU) and found little garbage among them.
    Here the youngest objects are collected every 50,000 allocations, so garbage made while
    starting (a long chain journal replayed, say) is still collected, and the whole heap
    is walked far less often. :func:`settle_heap` puts the thresholds back once the service
    listens; so does the end of this block, whatever happened.
    """
    before = gc.get_threshold()
    gc.set_threshold(*START_UP_THRESHOLDS)
    _settled_thresholds.append(before)
    try:
        yield
    finally:
        _settled_thresholds.pop()
        gc.set_threshold(*before)


_settled_thresholds: list[tuple[int, int, int]] = []
"""The thresholds :func:`settle_heap` restores: those from before the innermost
:func:`start_up_collections` still open."""


def settle_heap() -> None:
    """Collect start-up garbage, then leave what remains out of later full collections.

    Start-up imports the contract compiler, the solver and the web stack:
    hundreds of thousands of objects that live as long as the process. Every
    full collection of the cyclic garbage collector walked all of them (about
    0.3 s on the 2-core machine), stalling every request in flight; frozen,
    they are never walked again. Objects made afterwards (orders, sessions,
    responses) are collected as before, with the thresholds from before
    :func:`start_up_collections`.
    """
    gc.collect()
    gc.freeze()
    if _settled_thresholds:
        gc.set_threshold(*_settled_thresholds[-1])
