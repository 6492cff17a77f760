"""The epoch clock: closes gates on its own as time passes."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from wattx.services.market import MarketService

_log = structlog.get_logger("wattx.clock")


class EpochClockTask:
    """Every ``tick_s`` seconds, closes each epoch whose gate time has passed.

    The time itself comes from the market's injected clock, so an accelerated
    or manual clock drives it in simulations and tests.
    """

    def __init__(self, market: MarketService, *, tick_s: float) -> None:
        self._market = market
        self._tick_s = tick_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="wattx-epoch-clock")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                for summary in await self._market.close_due_epochs():
                    _log.info(
                        "epoch_closed",
                        epoch_id=summary.epoch_id,
                        trades=len(summary.trades),
                        expired=summary.expired,
                    )
            except Exception:
                # A failed closure is retried on the next tick; the engine has
                # been rebuilt from the database by the market service.
                _log.exception("epoch_close_failed")
            await asyncio.sleep(self._tick_s)
