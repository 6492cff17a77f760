"""Checkpoints of SQLite's write-ahead log, beside the writer instead of inside a commit."""

from __future__ import annotations

import structlog

from wattx.services.periodic import PeriodicTask
from wattx.store.db import Database

_log = structlog.get_logger("wattx.store")


class WalCheckpointTask(PeriodicTask):
    """Every ``tick_s`` seconds, a passive checkpoint of the SQLite database.

    The service's writers never checkpoint (see :mod:`wattx.store.db`), so the
    log grows only between two rounds; a failed round is retried at the next.
    """

    name = "wattx-wal-checkpoint"

    def __init__(self, db: Database, *, tick_s: float) -> None:
        super().__init__(tick_s=tick_s)
        self._db = db

    async def run_round(self) -> None:
        try:
            await self._db.checkpoint()
        except Exception:
            _log.exception("wal_checkpoint_failed")
