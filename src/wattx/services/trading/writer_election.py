"""One market writer among several replicas, elected by a PostgreSQL advisory lock.

Every replica keeps one connection of its own (:class:`wattx.store.market_writer.WriterLink`)
and tries the writer lock on it every ``tick_s``. The holder raises the fencing
token, rebuilds its books from the database, takes order submissions and runs
the epoch clock. The others forward order submissions through the database
inbox: the row is committed, the writer is woken (``NOTIFY``), places the orders
and records the answer in one transaction, and wakes the sender, which answers
its caller with exactly what the writer's own route would have answered.

When the writer dies, PostgreSQL sees its connection close and frees the lock;
the next replica to try takes it and answers what is waiting in the inbox. A
replica that sees its own lock connection end stops writing at once; should it
miss that, the fencing token stops its transactions once another has taken over.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import socket
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from wattx.domain import DomainError
from wattx.domain.epochs import EpochClock
from wattx.services.errors import NotMarketWriterError
from wattx.services.grouped_calls import GroupedCalls
from wattx.services.periodic import PeriodicTask
from wattx.services.principal import Principal, Role, UserStatus
from wattx.services.trading.market import (
    MarketService,
    OrderRequest,
    Submission,
    outcome_from_json,
    request_from_json,
    request_to_json,
)
from wattx.store import market_writer as writer_repo
from wattx.store.db import Database

_log = structlog.get_logger("wattx.market.writer")

_CLAIM_LIMIT = 500
"""Inbox rows the writer takes per round (each round's rows join the group commit)."""

_SWEEP_EVERY_S = 60.0
"""How often the writer deletes the inbox rows their senders are done with."""


class MarketWriterElection(PeriodicTask):
    """Tries the writer lock every ``tick_s``; forwards or takes inbox submissions."""

    name = "wattx-market-writer"

    def __init__(
        self,
        db: Database,
        market: MarketService,
        clock: EpochClock,
        *,
        tick_s: float,
        forward_timeout_s: float,
        candidate: bool,
    ) -> None:
        super().__init__(tick_s=tick_s)
        self._db = db
        self._market = market
        self._clock = clock
        self._forward_timeout_s = forward_timeout_s
        self._candidate = candidate
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self._link = writer_repo.WriterLink(db.url, on_notify=self._notified, on_lost=self._lost)
        self._waiting: dict[int, asyncio.Future[None]] = {}
        self._taken: set[int] = set()
        self._wake = asyncio.Event()
        self._claimer: asyncio.Task[None] | None = None
        self._reloads: set[asyncio.Task[None]] = set()
        # Forwards made at the same time share their transactions (a group commit).
        self._send = GroupedCalls(self._send_group)
        self._answer_of = GroupedCalls(self._answers_group)
        self._next_sweep = 0.0
        market.follow(self.forward, self._tell_writer_zones_changed)

    @property
    def is_writer(self) -> bool:
        return self._market.is_writer and self._link.holds_lock

    def start(self) -> None:
        super().start()
        self._claimer = asyncio.create_task(self._claim_loop(), name="wattx-market-inbox")

    async def stop(self) -> None:
        await super().stop()
        if self._claimer is not None:
            self._claimer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._claimer
        self._market.stop_writing()
        await self._link.close()

    async def run_round(self) -> None:
        try:
            if not self._link.is_open:
                await self._link.open()
            if self._link.holds_lock:
                await self._link.check()
                if not self._market.is_writer:
                    # Fenced off (another replica raised the term): start over.
                    self._market.stop_writing()
                    await self._link.close()
                    return
                self._wake.set()
                await self._sweep_if_due()
            elif self._candidate and await self._link.try_lock():
                await self._take_over()
            else:
                await self._poll_answers()
        except Exception as exc:
            _log.warning("market_writer_round_failed", error=type(exc).__name__)
            if self._link.holds_lock:
                self._lost()
            await self._link.close()

    async def _take_over(self) -> None:
        async with self._db.write() as session:
            term = await writer_repo.raise_term(session, self.holder, self._clock.now())
        await self._market.become_writer(term)
        _log.info("market_writer_elected", term=term, holder=self.holder)
        self._taken.clear()
        self._wake.set()

    def _lost(self) -> None:
        self._market.stop_writing()
        _log.warning("market_writer_lock_lost", holder=self.holder)

    # the sender's side ---------------------------------------------------------------

    async def forward(
        self,
        principal: Principal,
        requests: Sequence[OrderRequest],
        keys: Sequence[str | None],
    ) -> list[Submission | DomainError]:
        """Hand submissions to the writer through the inbox; answer once it committed."""
        payload = json.dumps(
            {
                "principal": {
                    "user_id": principal.user_id,
                    "role": principal.role.value,
                    "status": principal.status.value,
                    "session_id": principal.session_id,
                },
                "requests": [request_to_json(r) for r in requests],
                "keys": list(keys),
            }
        )
        inbox_id, done = await self._send((principal.user_id, payload))
        try:
            async with asyncio.timeout(self._forward_timeout_s):
                await asyncio.shield(done)
        except TimeoutError:
            async with self._db.write() as session:
                withdrawn = await writer_repo.abandon(session, inbox_id)
            if withdrawn:
                async with self._db.write() as session:
                    await writer_repo.forget(session, inbox_id)
                raise NotMarketWriterError(
                    "no market writer answered in time; nothing was placed"
                ) from None
        finally:
            self._waiting.pop(inbox_id, None)
        response = await self._answer_of(inbox_id)
        if response is None:
            raise NotMarketWriterError("the market writer's answer is missing")
        return [outcome_from_json(raw) for raw in json.loads(response)]

    async def _send_group(
        self, submissions: Sequence[tuple[str, str]]
    ) -> list[tuple[int, asyncio.Future[None]]]:
        """The inbox rows of concurrent forwards, added and committed together, the writer
        woken once: each row's id, and the future its answer resolves, awaited from before
        the commit (so no answer comes unheard)."""
        loop = asyncio.get_running_loop()
        sent: list[tuple[int, asyncio.Future[None]]] = []
        try:
            async with self._db.write() as session:
                ids = await writer_repo.add_many(session, submissions, datetime.now(UTC))
                for inbox_id in ids:
                    done = self._waiting[inbox_id] = loop.create_future()
                    sent.append((inbox_id, done))
                await writer_repo.notify(session, writer_repo.INBOX_CHANNEL, str(ids[-1]))
        except BaseException:
            for inbox_id, _ in sent:
                self._waiting.pop(inbox_id, None)
            raise
        return sent

    async def _answers_group(self, inbox_ids: Sequence[int]) -> list[str | None]:
        """The answers of rows the writer answered, read together (the writer's sweep
        deletes the rows later)."""
        async with self._db.read() as session:
            found = await writer_repo.answers(session, inbox_ids)
        return [found.get(inbox_id) for inbox_id in inbox_ids]

    async def _poll_answers(self) -> None:
        """Should a notification be missed (a reconnect), find answers by reading."""
        if not self._waiting:
            return
        async with self._db.read() as session:
            done = await writer_repo.answered(session, list(self._waiting))
        for inbox_id in done:
            self._resolve(inbox_id)

    def _resolve(self, inbox_id: int) -> None:
        # Let go here too, not only when the sender is done waiting: a sender cancelled
        # before it learnt its row's id never would.
        future = self._waiting.pop(inbox_id, None)
        if future is not None and not future.done():
            future.set_result(None)

    async def _tell_writer_zones_changed(self) -> None:
        async with self._db.write() as session:
            await writer_repo.notify(session, writer_repo.RELOAD_CHANNEL, self.holder)

    # the writer's side ---------------------------------------------------------------

    async def _sweep_if_due(self) -> None:
        """Delete the inbox rows every sender is done with, every :data:`_SWEEP_EVERY_S`.

        A sender reads its answer within moments of the writer's commit, or withdraws
        its row after ``forward_timeout_s``; a row older than twice that and a minute
        is answered or withdrawn for good (its sender took the answer, gave up, or
        died), and would otherwise stay for ever.
        """
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_EVERY_S
        # The machine's time, as the senders' timeouts and the rows' creation times are:
        # a market clock may run faster (a simulation) or stand still (a test).
        horizon = timedelta(seconds=2 * self._forward_timeout_s + 60)
        async with self._db.write() as session:
            swept = await writer_repo.sweep(session, datetime.now(UTC) - horizon)
        if swept:
            _log.info("market_inbox_swept", rows=swept)

    def _notified(self, channel: str, payload: str) -> None:
        if channel == writer_repo.DONE_CHANNEL:
            for part in payload.split(","):
                if part.isdigit():
                    self._resolve(int(part))
        elif channel == writer_repo.INBOX_CHANNEL:
            if self.is_writer:
                self._wake.set()
        elif channel == writer_repo.RELOAD_CHANNEL and self.is_writer:
            task = asyncio.get_running_loop().create_task(self._market.reload_zones())
            self._reloads.add(task)
            task.add_done_callback(self._reloads.discard)

    async def _claim_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self.is_writer:
                continue
            try:
                await self._claim()
            except Exception as exc:
                _log.warning("market_inbox_claim_failed", error=type(exc).__name__)

    async def _claim(self) -> None:
        """Queue the inbox's pending submissions for the group commit, in arrival order."""
        async with self._db.read() as session:
            rows = await writer_repo.pending(session, excluding=self._taken, limit=_CLAIM_LIMIT)
        for row in rows:
            raw = json.loads(row.payload)
            who = raw["principal"]
            principal = Principal(
                who["user_id"], Role(who["role"]), UserStatus(who["status"]), who["session_id"]
            )
            requests = [request_from_json(r) for r in raw["requests"]]
            self._taken.add(row.id)
            answered = self._market.enqueue_forwarded(row.id, principal, requests, raw["keys"])
            answered.add_done_callback(functools.partial(self._finished, row.id))
        if len(rows) == _CLAIM_LIMIT:
            self._wake.set()

    def _finished(self, inbox_id: int, done: asyncio.Future[Any]) -> None:
        """A taken row's batch ended: answered (no longer pending) or failed (taken again)."""
        self._taken.discard(inbox_id)
        if not done.cancelled():
            done.exception()  # a failure is handled by taking the row again: seen, not raised
