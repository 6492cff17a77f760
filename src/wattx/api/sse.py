"""Server-sent events: a ring of recent events with increasing ids, and the stream.

The hub reads the bus, numbers each event (ids increase by one per event in
this process) and keeps the last ``ring_size`` so a client reconnecting with
``Last-Event-ID`` gets what it missed, if still in the ring. Node heartbeats are
kept in a ring of their own of the same size: thousands of nodes heartbeating
would otherwise push every other event out of reach within seconds. Each client only
receives events it may see (its own orders and trades, public market events;
operators and auditors see everything); a trade shows a party its own user id
and order, not its counterparty's.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import heapq
import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

import structlog

from wattx.bus.events import Event, EventType
from wattx.bus.port import EventBus
from wattx.services.trading.views import trade_seen_by

_log = structlog.get_logger("wattx.events")
_RESUBSCRIBE_S = 1.0
# Events kept apart from the replay ring of the others (see the module's docstring).
_OWN_RING = frozenset({EventType.NODE_HEARTBEAT})


@dataclass(slots=True)
class NumberedEvent:
    id: Final[int]  # Final fields, not frozen: as wattx.bus.events.Event
    event: Final[Event]

    def to_sse(self) -> str:
        return f"id: {self.id}\nevent: {self.event.type.value}\ndata: {_payload(self.event)}\n\n"


def _payload(event: Event) -> str:
    return json.dumps(
        {"type": event.type.value, "at": event.at.isoformat(), "data": event.data},
        separators=(",", ":"),
    )


def _ping(now: datetime, last_id: int) -> str:
    data = json.dumps({"at": now.isoformat(), "last_id": last_id}, separators=(",", ":"))
    return f"event: ping\ndata: {data}\n\n"


def _seen_by(numbered: NumberedEvent, user_id: str, *, sees_everything: bool) -> NumberedEvent:
    """A trade reaches both parties; each sees it without its counterparty's ids."""
    event = numbered.event
    if sees_everything or event.type is not EventType.TRADE_EXECUTED:
        return numbered
    data = trade_seen_by(event.data, user_id, sees_everything=False)
    return NumberedEvent(numbered.id, replace(event, data=data))


class EventHub:
    def __init__(self, bus: EventBus, *, ring_size: int) -> None:
        self._bus = bus
        self._ring: deque[NumberedEvent] = deque(maxlen=ring_size)
        self._heartbeats: deque[NumberedEvent] = deque(maxlen=ring_size)
        self._last_id = 0
        # Set, then replaced, at an append while streams wait on it: waiters need no lock,
        # so a stream cancelled while it waits (its client gone, the server stopping) can
        # never leave one held. With nobody waiting (no stream, or every stream busy
        # sending) an append leaves it as it is: a batch of a thousand orders is a
        # thousand events, and an Event each was a cost of its own.
        self._appended = asyncio.Event()
        self._waiting = 0
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._pump(), name="wattx-event-hub")
        # Wait until the bus subscription is live, so no event published after
        # start() returns is missed.
        async with asyncio.timeout(10):
            await self._subscribed.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def last_id(self) -> int:
        return self._last_id

    async def _pump(self) -> None:
        """Read the bus for the hub's lifetime. The bus itself reconnects after an
        outage; should its stream still fail, the hub subscribes again."""
        while True:
            stream = self._bus.subscribe()
            try:
                first = asyncio.ensure_future(anext(stream))
                await asyncio.sleep(0)
                await asyncio.sleep(0.05)
                self._subscribed.set()
                event = await first
                while True:
                    self._append(event)
                    event = await anext(stream)
            except Exception as exc:
                _log.warning("event_hub_resubscribing", error=type(exc).__name__)
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()  # type: ignore[attr-defined]
            await asyncio.sleep(_RESUBSCRIBE_S)

    def _append(self, event: Event) -> None:
        self._last_id += 1
        ring = self._heartbeats if event.type in _OWN_RING else self._ring
        ring.append(NumberedEvent(self._last_id, event))
        if self._waiting:
            appended, self._appended = self._appended, asyncio.Event()
            appended.set()

    async def stream(
        self,
        *,
        user_id: str,
        sees_everything: bool,
        last_event_id: int | None,
        keepalive_s: float,
        ping_clock: Callable[[], datetime] | None = None,
    ) -> AsyncIterator[str]:
        """SSE text: missed events after ``last_event_id``, then live ones, with keep-alives.

        Keep-alives are comments; with ``ping_clock`` they are ``ping`` events
        instead (``{"at": now, "last_id": n}``), one at once and one after every
        ``keepalive_s`` of silence, so a page can tell a quiet stream from a dead one.
        """
        cursor = self._last_id if last_event_id is None else last_event_id
        yield f": connected, last id {self._last_id}\n\n"
        if ping_clock is not None:
            yield _ping(ping_clock(), cursor)
        while True:
            pending = self.after(cursor)
            for numbered in pending:
                cursor = numbered.id
                if numbered.event.visible_to(user_id, sees_everything=sees_everything):
                    yield _seen_by(numbered, user_id, sees_everything=sees_everything).to_sse()
            if pending:
                continue
            if not await self._wait_beyond(cursor, keepalive_s):
                yield ": keep-alive\n\n" if ping_clock is None else _ping(ping_clock(), cursor)

    def after(self, cursor: int) -> list[NumberedEvent]:
        """The events kept whose id is above ``cursor``, in id order.

        Every live stream asks at every event, so the first event wanted is found by
        bisection on the ids (increasing along each ring), not by reading the rings."""
        if cursor >= self._last_id:
            return []
        others = _after(self._ring, cursor)
        heartbeats = _after(self._heartbeats, cursor)
        if not heartbeats or not others:
            return others or heartbeats
        return list(heapq.merge(others, heartbeats, key=_event_id))

    async def _wait_beyond(self, cursor: int, timeout_s: float) -> bool:
        """Wait until an event newer than ``cursor`` exists; False on timeout."""
        if self._last_id > cursor:
            return True
        self._waiting += 1
        try:
            async with asyncio.timeout(timeout_s):
                await self._appended.wait()
        except TimeoutError:
            return False
        finally:
            self._waiting -= 1
        return True


def _event_id(numbered: NumberedEvent) -> int:
    return numbered.id


def _after(ring: deque[NumberedEvent], cursor: int) -> list[NumberedEvent]:
    """The events of one ring (ids increasing along it) whose id is above ``cursor``."""
    start = bisect.bisect_right(ring, cursor, key=_event_id)
    return [ring[i] for i in range(start, len(ring))]
