"""The epoch clock: closes gates on its own as time passes."""

from __future__ import annotations

import structlog

from wattx.services.periodic import PeriodicTask
from wattx.services.trading.market import MarketService
from wattx.store.db import is_storage_failure

_log = structlog.get_logger("wattx.clock")


class EpochClockTask(PeriodicTask):
    """Every ``tick_s`` seconds, closes each epoch whose gate time has passed.

    The time itself comes from the market's injected clock, so an accelerated
    or manual clock drives it in simulations and tests.
    """

    name = "wattx-epoch-clock"

    def __init__(self, market: MarketService, *, tick_s: float) -> None:
        super().__init__(tick_s=tick_s)
        self._market = market

    async def run_round(self) -> None:
        try:
            for summary in await self._market.close_due_epochs():
                _log.info(
                    "epoch_closed",
                    epoch_id=summary.epoch_id,
                    trades=len(summary.trades),
                    expired=summary.expired,
                )
        except Exception as exc:
            # A failed closure stays due and is retried on the next tick; the
            # market rebuilds its books from the database first.
            if is_storage_failure(exc):
                _log.warning("epoch_close_deferred", error=type(exc).__name__)
            else:
                _log.exception("epoch_close_failed")
