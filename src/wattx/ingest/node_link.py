"""The node link: one authenticated WebSocket per edge node, held by this process.

The service speaks first: a ``challenge`` with a fresh nonce. The node's first
frame must be ``auth`` (its id and its signature of the nonce); then heartbeats,
acks, events, relayed reading batches and key rotations go up, and commands come
down. :class:`NodeLinkHub` holds the links of this process and one bus
subscription to ``wattx:nodes:*:commands``, so a command issued on any API
process (or a revocation) reaches the process where the node is linked. The hub
also re-checks all its links in one query every ``recheck_s`` seconds, so a
revoked node's link closes within that time even if a bus message was lost, and
looks for due commands (retries, a ``not_before`` reached) every ``command_poll_s``
in one query by state and time, kept for its links: the cost of the sweeps does not
grow with a query per link, and the command sweep's not with the links held.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from wattx.bus.port import EventBus
from wattx.domain.errors import DomainError
from wattx.nodes.challenge import new_nonce
from wattx.nodes.errors import NodeAuthenticationError, NodeKeyTakenError, NodeRevokedError
from wattx.nodes.frames import (
    COMMANDS_PATTERN,
    MAX_FRAME_BYTES,
    AckFrame,
    AuthFrame,
    CloseCode,
    EventFrame,
    FrameError,
    HeartbeatFrame,
    ReadingsFrame,
    RotateKeyFrame,
    encode,
    node_of_channel,
    parse_node_frame,
)
from wattx.nodes.health import OFFLINE_AFTER_MISSED
from wattx.services.community.nodes import LINK_BATCH, LinkGrant, NodeService, RelayOutcome

_log = logging.getLogger(__name__)


class LinkClosedError(Exception):
    """The peer went away."""


class LinkSocket(Protocol):
    """What a link needs of a WebSocket (the API wraps Starlette's)."""

    async def send_text(self, text: str) -> None: ...

    async def receive_text(self) -> str:
        """The next text message; :class:`LinkClosedError` when the peer is gone."""

    async def close(self, code: int, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class LinkTimings:
    auth_timeout_s: float = 10.0
    recheck_s: float = 30.0
    command_poll_s: float = 5.0
    max_frame_bytes: int = MAX_FRAME_BYTES


_CLOSE_FOR = {
    "revoked": (CloseCode.NODE_REVOKED, "node revoked"),
    "key_retired": (CloseCode.KEY_ROTATED, "key retired; link again with the new key"),
    "superseded": (CloseCode.SUPERSEDED, "a newer link of this node took over"),
}


class NodeLinkHub:
    def __init__(self, nodes: NodeService, bus: EventBus, timings: LinkTimings) -> None:
        self._nodes = nodes
        self._bus = bus
        self._timings = timings
        self._links: dict[str, _Link] = {}
        self._task: asyncio.Task[None] | None = None
        self._sweeps: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="node-link-hub")
        self._sweeps = [
            asyncio.create_task(self._sweep_commands(), name="node-link-commands"),
            asyncio.create_task(self._sweep_validity(), name="node-link-recheck"),
        ]

    async def stop(self) -> None:
        for link in list(self._links.values()):
            await link.close(CloseCode.GOING_AWAY, "service stopping")
        for task in [*self._sweeps, *([self._task] if self._task else [])]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def linked(self) -> int:
        return len(self._links)

    async def serve(self, socket: LinkSocket, *, source: str) -> None:
        """Run one link until it ends."""
        link = _Link(self._nodes, socket, self._timings, source)
        grant = await link.handshake()
        if grant is None:
            return
        older = self._links.get(grant.node_id)
        if older is not None:
            await older.close(CloseCode.SUPERSEDED, "a newer link of this node took over")
        self._links[grant.node_id] = link
        try:
            await link.run()
        finally:
            if self._links.get(grant.node_id) is link:
                del self._links[grant.node_id]
            await self._nodes.link_closed(link.grant or grant)

    async def _sweep_commands(self) -> None:
        """Every ``command_poll_s``: one query for the due commands of all links held here
        (retries, ``not_before`` reached, a lost bus nudge); wakes the links concerned."""
        while True:
            await asyncio.sleep(self._timings.command_poll_s)
            try:
                if self._links:
                    for node_id in await self._nodes.nodes_with_due_commands(list(self._links)):
                        link = self._links.get(node_id)
                        if link is not None:
                            link.wake()
            except Exception:
                _log.exception("node command sweep failed")

    async def _sweep_validity(self) -> None:
        """Every ``recheck_s``: one query re-checks every link held here (revoked node,
        retired key, a newer link elsewhere) and closes those that must close."""
        while True:
            await asyncio.sleep(self._timings.recheck_s)
            try:
                grants = [link.grant for link in self._links.values() if link.grant is not None]
                for node_id, reason in (await self._nodes.links_to_close(grants)).items():
                    link = self._links.get(node_id)
                    if link is not None:
                        await link.close(*_CLOSE_FOR[reason])
            except Exception:
                _log.exception("node link recheck failed")

    async def _listen(self) -> None:
        while True:
            try:
                async for channel, message in self._bus.subscribe_to(COMMANDS_PATTERN):
                    node_id = node_of_channel(channel)
                    link = self._links.get(node_id)
                    if link is not None:
                        await link.notify(json.loads(message))
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.exception("node link hub lost the bus; resubscribing")
                await asyncio.sleep(1.0)


class _Link:
    def __init__(
        self, nodes: NodeService, socket: LinkSocket, timings: LinkTimings, source: str
    ) -> None:
        self._nodes = nodes
        self._socket = socket
        self._timings = timings
        self._source = source
        self._nonce = new_nonce()
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._pushed: list[dict[str, Any]] = []
        self._check_due = True
        self.grant: LinkGrant | None = None

    async def handshake(self) -> LinkGrant | None:
        await self._send(encode("challenge", nonce=self._nonce))
        try:
            async with asyncio.timeout(self._timings.auth_timeout_s):
                raw = await self._socket.receive_text()
            frame = parse_node_frame(raw, max_bytes=self._timings.max_frame_bytes)
            if not isinstance(frame, AuthFrame):
                raise FrameError(CloseCode.MALFORMED_FRAME, "the first frame must be auth")
            self.grant = await self._nodes.authenticate_link(
                frame.node_id, self._nonce, frame.signature, source=self._source
            )
        except TimeoutError:
            await self.close(CloseCode.AUTH_TIMEOUT, "no auth frame in time")
            return None
        except LinkClosedError:
            return None
        except FrameError as exc:
            await self.close(exc.close_code, exc.reason)
            return None
        except NodeRevokedError:
            await self.close(CloseCode.NODE_REVOKED, "node revoked")
            return None
        except NodeAuthenticationError:
            await self.close(CloseCode.AUTHENTICATION_FAILED, "authentication failed")
            return None
        await self._send(
            encode(
                "welcome",
                node_id=self.grant.node_id,
                link_id=self.grant.link_id,
                heartbeat_interval_s=self.grant.heartbeat_interval_s,
            )
        )
        return self.grant

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(self._receive_loop()),
            asyncio.create_task(self._pump_loop()),
            asyncio.create_task(self._closed.wait()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    exc = task.exception()
                    if not isinstance(exc, LinkClosedError):
                        _log.error("node link failed", exc_info=exc)
                        await self.close(CloseCode.GOING_AWAY, "internal error")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def wake(self) -> None:
        self._check_due = True
        self._wake.set()

    async def notify(self, message: dict[str, Any]) -> None:
        kind = message.get("kind")
        if kind == "command":
            command = message.get("command")
            if isinstance(command, dict):
                self._pushed.append(command)
            else:
                self._check_due = True
            self._wake.set()
        elif kind == "revoked":
            await self.close(*_CLOSE_FOR["revoked"])
        elif kind == "linked" and self.grant and message.get("link_id") != self.grant.link_id:
            await self.close(*_CLOSE_FOR["superseded"])

    async def close(self, code: int, reason: str) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(Exception):
            await self._socket.close(code, reason)

    async def _send(self, text: str) -> None:
        async with self._send_lock:
            await self._socket.send_text(text)

    async def _receive_loop(self) -> None:
        assert self.grant is not None
        # The node's heartbeats are the link's liveness check: the service sends no
        # WebSocket pings (with thousands of links they were most of its idle CPU), so a
        # link whose node fell silent as long as the health round needs to call it
        # offline is closed, and a half-open connection does not linger.
        silence = _SilenceWatch(
            OFFLINE_AFTER_MISSED * self.grant.heartbeat_interval_s,
            lambda: self.close(CloseCode.LINK_SILENT, "no frame for five heartbeat intervals"),
        )
        try:
            while True:
                raw = await self._socket.receive_text()
                silence.heard()
                try:
                    frame = parse_node_frame(raw, max_bytes=self._timings.max_frame_bytes)
                    if isinstance(frame, AuthFrame):
                        raise FrameError(CloseCode.MALFORMED_FRAME, "already authenticated")
                except FrameError as exc:
                    await self._nodes.count_bad_frame(self.grant.node_id)
                    await self.close(exc.close_code, exc.reason)
                    return
                await self._handle(frame)
        finally:
            silence.stop()

    async def _handle(
        self, frame: HeartbeatFrame | AckFrame | ReadingsFrame | EventFrame | RotateKeyFrame
    ) -> None:
        grant = self.grant
        assert grant is not None
        if isinstance(frame, HeartbeatFrame):
            await self._nodes.record_heartbeat(grant, frame)
        elif isinstance(frame, AckFrame):
            await self._nodes.acknowledge(grant, frame, source=self._source)
        elif isinstance(frame, ReadingsFrame):
            outcomes = await self._nodes.relay_readings(grant, frame.batches)
            await self._send(encode("readings_result", id=frame.id, outcomes=_outcomes(outcomes)))
        elif isinstance(frame, EventFrame):
            await self._nodes.publish_node_event(grant, frame.name, frame.data)
        else:
            try:
                self.grant = await self._nodes.rotate_key(
                    grant, self._nonce, frame.public_key, frame.signature, source=self._source
                )
            except (NodeAuthenticationError, NodeKeyTakenError) as exc:
                await self._send(encode("error", code=exc.code, detail=exc.detail))
            else:
                await self._send(encode("key_rotated", public_key=frame.public_key))

    async def _pump_loop(self) -> None:
        """Send due commands at once, then whenever the link is woken: a command pushed
        over the bus as it was queued goes out as it is (its ``sent`` mark is written with
        the next round); a bare nudge or the hub's sweep takes the due commands from the
        database."""
        assert self.grant is not None
        # What was due when the link was accepted was taken with its group's write.
        initial = self._nodes.commands_at_link(self.grant)
        if initial is not None:
            for command in initial:
                await self._send(encode("command", command=command))
            self._check_due = len(initial) >= LINK_BATCH
        while True:
            self._wake.clear()
            pushed, self._pushed = self._pushed, []
            for command in pushed:
                await self._send(encode("command", command=command))
                self._nodes.note_sent(str(command["id"]))
            if self._check_due:
                self._check_due = False
                for command in await self._nodes.take_due_commands(self.grant.node_id):
                    await self._send(encode("command", command=command))
            await self._wake.wait()


class _SilenceWatch:
    """Calls ``on_silence`` once no frame was heard for ``silence_s`` seconds.

    One timer per link, moved on lazily: a frame only notes the loop's time, and the timer,
    when it fires early, re-arms itself at the moment the link would really be silent.
    (A timeout around every receive cost a timer made and cancelled per frame: with
    thousands of links heartbeating, a measurable share of the service's CPU.)"""

    def __init__(
        self, silence_s: float, on_silence: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._silence_s = silence_s
        self._on_silence = on_silence
        self._heard_at = self._loop.time()
        self._closing: asyncio.Task[None] | None = None
        self._timer = self._loop.call_at(self._heard_at + silence_s, self._check)

    def heard(self) -> None:
        self._heard_at = self._loop.time()

    def stop(self) -> None:
        self._timer.cancel()

    def _check(self) -> None:
        due = self._heard_at + self._silence_s
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._check)
            return
        self._closing = self._loop.create_task(self._on_silence())


def _outcomes(outcomes: list[RelayOutcome]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for o in outcomes:
        if o.error is not None:
            out.append(_problem(o.index, o.error))
        else:
            assert o.result is not None
            out.append(
                {
                    "index": o.index,
                    "status": 200,
                    "meter_id": o.result.meter_id,
                    "accepted": o.result.accepted,
                    "duplicates": o.result.duplicates,
                    "quarantined": o.result.quarantined,
                    "last_seq": o.result.last_seq,
                }
            )
    return out


def _problem(index: int, error: DomainError) -> dict[str, Any]:
    return {"index": index, "status": error.http_status, "code": error.code, "detail": error.detail}
