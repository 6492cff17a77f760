"""The garbage collector of a service process: seldom while it starts, told to leave
what start-up built alone once it listens, and seldom enough while it serves that the
objects each write batch holds for a moment do not make the whole heap walked again
and again."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

START_UP_THRESHOLDS = (50_000, 20, 100)
"""The collector's thresholds while a service starts (the interpreter's are 700, 10, 10)."""

SERVING_THRESHOLDS = (50_000, 20, 10)
"""The collector's thresholds once a service listens (see :func:`settle_heap`)."""


@contextlib.contextmanager
def start_up_collections() -> Iterator[None]:
    """Collect seldom while a service starts, until :func:`settle_heap`.

    Start-up imports the contract compiler, the EVM and the web stack and deploys the
    embedded chain's contracts: hundreds of thousands of objects that live as long as the
    process. The collector, run every 700 allocations, walked them again and again while
    they were made (about a tenth of a start's CPU) and found little garbage among them.
    Here the youngest objects are collected every 50,000 allocations, so garbage made while
    starting (a long chain journal replayed, say) is still collected, and the whole heap
    is walked far less often. :func:`settle_heap` sets :data:`SERVING_THRESHOLDS` once the
    service listens; the end of this block puts the thresholds from before it back,
    whatever happened.
    """
    before = gc.get_threshold()
    gc.set_threshold(*START_UP_THRESHOLDS)
    _serving.append(True)
    try:
        yield
    finally:
        _serving.pop()
        gc.set_threshold(*before)


_serving: list[bool] = []
"""One entry per :func:`start_up_collections` block open: :func:`settle_heap` sets the
serving thresholds only inside one."""


def settle_heap() -> None:
    """Collect start-up garbage, then leave what remains out of later full collections,
    and (inside :func:`start_up_collections`) collect as :data:`SERVING_THRESHOLDS` say.

    Start-up imports the contract compiler, the solver and the web stack:
    hundreds of thousands of objects that live as long as the process. Every
    full collection of the cyclic garbage collector walked all of them (about
    0.3 s on the 2-core machine), stalling every request in flight; frozen,
    they are never walked again.

    Objects made afterwards (orders, sessions, responses) are collected, but not every
    700 allocations: the market writer's batch of a thousand orders holds tens of
    thousands of objects for a tenth of a second, and at the interpreter's thresholds
    the collector moved them to the oldest generation, where they soon set off a full
    collection, walking the whole book each time (a sixth of the service's CPU in the
    batch benchmark, ``docs/operations.md``). Collected every 50,000 allocations, few of
    them live long enough to be moved.
    """
    gc.collect()
    gc.freeze()
    if _serving:
        gc.set_threshold(*SERVING_THRESHOLDS)
