"""Calls that arrive while one is under way, made together in the next: a group commit.

A replica that forwards orders to the market writer writes one inbox row per
request and takes one answer per request, each a transaction of its own. Fifty
callers at once paid fifty commits where one would do; :class:`GroupedCalls`
gathers them: the first caller's group starts at once, those that come while it
runs wait for it and then go together, in the order they came.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupedCalls(Generic[Item, Result]):
    """``await calls(item)``: ``run`` on a group of items, this caller's result out of it.

    ``run`` takes the group's items in arrival order and returns one result per
    item, in the same order. When it raises, every caller of that group gets the
    error and the next group runs as usual. A caller cancelled while it waits
    leaves its item in the group (it may have been sent already): what ``run``
    does for it is done, only its result is dropped.
    """

    def __init__(self, run: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]]) -> None:
        self._run = run
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def __call__(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._waiting.append((item, future))
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._run_groups())
        return await future

    async def _run_groups(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            try:
                results = await self._run([item for item, _ in group])
                if len(results) != len(group):
                    raise RuntimeError(f"{len(results)} results for {len(group)} calls")
            except asyncio.CancelledError:
                # Shutting down: nobody will run the rest either.
                for _, future in [*group, *self._waiting]:
                    future.cancel()
                self._waiting = []
                raise
            except Exception as exc:
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(result)
