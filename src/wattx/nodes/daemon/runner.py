"""The daemon's main loop: hold the link, heartbeat, relay the buffer, run commands.

The link is re-dialled with jittered exponential backoff. A command is
persisted before it is acknowledged (``node_durable``), run from the store
(also after a restart), and its outcome is reported when the link is up; a
command id seen before is answered from the store, never run again. A link
closed with :data:`CloseCode.NODE_REVOKED` stops the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from wattx.nodes import challenge
from wattx.nodes.backoff import next_step_s, reconnect_wait_s
from wattx.nodes.commands import LEASED_DEVICE_COMMANDS, CommandType
from wattx.nodes.daemon.bridge import DeviceBridge
from wattx.nodes.daemon.config import (
    KEY_NAME,
    NEXT_KEY_NAME,
    NodeConfig,
    new_seed,
    read_key,
    write_key,
    write_private_json,
)
from wattx.nodes.daemon.liveness import PING_EVERY_HEARTBEATS, tune_link_socket
from wattx.nodes.daemon.stopping import stop_tasks
from wattx.nodes.daemon.store import Lease, NodeStore, SlotRun, StoredCommand
from wattx.nodes.desired import ROLLBACK_S, check_apply_payload
from wattx.nodes.errors import InvalidCommandError, InvalidNodeConfigError
from wattx.nodes.frames import CloseCode, FrameError, decode_service_frame, encode
from wattx.nodes.schedule import SLOTS, Schedule, parse_schedule

_log = logging.getLogger(__name__)

SOFTWARE_VERSION = "wattx-node/0.1.0"
BATCHES_PER_FRAME = 20
RESULT_TIMEOUT_S = 60.0
RELEASE_TTL_S = 300.0
"""How long the node keeps asking a device to return to its local policy."""
SLOT_REPORTS_PER_FRAME = 96
PENDING_CONFIG_NAME = "node.json.pending"
"""A config change not yet confirmed by a link: the version it replaced, the deadline."""


class NodeStoppedError(Exception):
    """The daemon must not go on (revoked); the message says why."""


class NodeDaemon:
    def __init__(
        self,
        config: NodeConfig,
        *,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        config_rollback_s: float = ROLLBACK_S,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self._now: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        """The schedule's clock (slot boundaries, the expiry of its setpoints)."""
        self.store = NodeStore(
            config.dir / "node.sqlite3",
            max_batches=config.buffer_max_batches,
            dedup_days=config.dedup_days,
        )
        self._key_path = config.dir / KEY_NAME
        self._next_key_path = config.dir / NEXT_KEY_NAME
        self._seed = read_key(self._key_path)
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._rollback_s = config_rollback_s
        self._started = time.monotonic()
        self._ws: ClientConnection | None = None
        self._nonce: str | None = None
        self._send_lock = asyncio.Lock()
        self._results: dict[str, asyncio.Future[list[dict[str, Any]]]] = {}
        self._rotation: asyncio.Future[dict[str, Any]] | None = None
        self._buffered = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._releases: set[asyncio.Task[None]] = set()
        self._wake_dial = asyncio.Event()
        self._live_after = 0
        self._slot_tasks: dict[tuple[int, int, str, str], asyncio.Task[None]] = {}
        self._schedule_swept: tuple[int, int] | None = None
        self._slot_report_lock = asyncio.Lock()
        self.linked = asyncio.Event()
        self.links_opened = 0
        self.bridge: DeviceBridge | None = None
        if config.mqtt_url:
            self.bridge = DeviceBridge(
                config.mqtt_url,
                config.mqtt_prefix,
                on_batch=self.buffer_batch,
                on_event=self._device_event,
                clock=self._now,
            )

    # ------------------------------------------------------------------ public

    def buffer_batch(self, meter_id: str, batch: dict[str, Any]) -> int:
        """Put a meter's signed batch on disk; it is relayed when the link is up."""
        seq = self.store.buffer(meter_id, batch)
        self._buffered.set()
        return seq

    async def run(self) -> None:
        """Run until cancelled or until the node is revoked (:class:`NodeStoppedError`)."""
        background: list[asyncio.Task[None]] = []
        if self.bridge is not None:
            background.append(asyncio.create_task(self.bridge.run()))
        # What held a device before a restart holds it no longer: the link was lost.
        for lease in self.store.leases():
            self._release(lease, "node_restart")
        background.append(asyncio.create_task(self._control_loop()))
        background.append(asyncio.create_task(self._schedule_loop()))
        for stored in self.store.unfinished_commands():
            self._spawn(stored.body)
        backoff = self._backoff_initial_s
        try:
            while True:
                try:
                    await self._session()
                    backoff = self._backoff_initial_s
                except ConnectionClosed as exc:
                    code = exc.rcvd.code if exc.rcvd is not None else None
                    if code == CloseCode.NODE_REVOKED:
                        raise NodeStoppedError(
                            f"node {self.config.node_id} was revoked by the operator; "
                            "it will not reconnect (enrol again with a new registration token)"
                        ) from exc
                    if code == CloseCode.AUTHENTICATION_FAILED and self._promote_next_key():
                        continue
                    if self.links_opened and code is not None:
                        backoff = self._backoff_initial_s
                    _log.warning("link closed (code %s); reconnecting", code)
                except (OSError, InvalidHandshake, InvalidURI, TimeoutError, FrameError) as exc:
                    _log.warning("link unavailable (%s)", exc)
                finally:
                    self.linked.clear()
                    self._ws = None
                    self._fail_pending()
                # Exponential backoff with full jitter: a fleet does not reconnect in
                # step, and no wait exceeds the cap. A config change dials again at once.
                try:
                    async with asyncio.timeout(
                        reconnect_wait_s(backoff, cap_s=self._backoff_max_s)
                    ):
                        await self._wake_dial.wait()
                    backoff = self._backoff_initial_s
                except TimeoutError:
                    backoff = next_step_s(backoff, cap_s=self._backoff_max_s)
                self._wake_dial.clear()
        finally:
            tasks = [
                *background,
                *self._running.values(),
                *self._releases,
                *self._slot_tasks.values(),
            ]
            await stop_tasks(tasks)
            self.store.close()

    # ------------------------------------------------------------------ the link

    async def _session(self) -> None:
        # No keepalive pings of the library's own (see wattx.nodes.daemon.liveness).
        # Uncompressed: the frames are small JSON, and the service offers no compression.
        async with websockets.connect(
            self.config.link_url,
            max_size=1024 * 1024,
            open_timeout=10,
            ping_interval=None,
            compression=None,
        ) as ws:
            sock = ws.transport.get_extra_info("socket")
            if sock is not None:
                tune_link_socket(sock, self.config.heartbeat_interval_s)
            async with asyncio.timeout(10):
                hello = decode_service_frame(await ws.recv())
            if hello["type"] != "challenge" or not isinstance(hello.get("nonce"), str):
                raise FrameError(CloseCode.MALFORMED_FRAME, "expected a challenge")
            nonce = hello["nonce"]
            signature = challenge.sign(
                challenge.link_message(self.config.node_id, nonce), self._seed
            )
            await ws.send(encode("auth", node_id=self.config.node_id, signature=signature))
            async with asyncio.timeout(10):
                welcome = decode_service_frame(await ws.recv())
            if welcome["type"] != "welcome":
                raise FrameError(CloseCode.MALFORMED_FRAME, "expected welcome")
            self._ws = ws
            self._nonce = nonce
            # What is in the buffer now is backlog; what comes in from now on is live.
            self._live_after = self.store.newest_seq()
            self.links_opened += 1
            self.linked.set()
            _log.info("linked to %s as node %s", self.config.server, self.config.node_id)
            self.store.forget_old_commands()
            for stored in self.store.unreported_commands():
                await self._report(stored.id)
            await self._send_lease_reports()
            await self._send_slot_reports()
            tasks = [
                asyncio.create_task(self._receive(ws)),
                asyncio.create_task(self._heartbeats()),
                asyncio.create_task(self._relay()),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            finally:
                await stop_tasks(tasks)

    async def _send(self, text: str) -> None:
        ws = self._ws
        if ws is None:
            raise ConnectionError("not linked")
        async with self._send_lock:
            await ws.send(text)

    async def _receive(self, ws: ClientConnection) -> None:
        async for raw in ws:
            frame = decode_service_frame(raw)
            kind = frame["type"]
            if kind == "command" and isinstance(frame.get("command"), dict):
                await self._on_command(frame["command"])
            elif kind == "readings_result":
                future = self._results.get(str(frame.get("id")))
                if future is not None and not future.done():
                    future.set_result(list(frame.get("outcomes", [])))
            elif kind in ("key_rotated", "error") and self._rotation is not None:
                if not self._rotation.done():
                    self._rotation.set_result(frame)
            else:
                _log.info("ignoring a %s frame", kind)

    async def _heartbeats(self) -> None:
        """A heartbeat every interval; with the first of a link and every
        :data:`PING_EVERY_HEARTBEATS` th after it, a WebSocket ping. A pong not back by
        the next heartbeat ends the link, which is then dialled again."""
        pong: asyncio.Future[float] | None = None
        beats = 0
        while True:
            if pong is not None and not pong.done():
                raise ConnectionError("no pong within a heartbeat interval")
            pong = None
            await self._send(
                encode(
                    "heartbeat",
                    uptime_s=int(time.monotonic() - self._started),
                    version=SOFTWARE_VERSION,
                    buffer_depth=self.store.depth(),
                    devices=self.bridge.devices if self.bridge else {},
                )
            )
            if beats % PING_EVERY_HEARTBEATS == 0:
                pong = await self._ping()
            beats += 1
            await asyncio.sleep(self.config.heartbeat_interval_s)

    async def _ping(self) -> asyncio.Future[float]:
        ws = self._ws
        if ws is None:
            raise ConnectionError("not linked")
        async with self._send_lock:
            waiter = await ws.ping()
        pong = asyncio.ensure_future(waiter)
        # A link that closes fails the waiter: the receive loop reports the close.
        pong.add_done_callback(lambda done: done.cancelled() or done.exception())
        return pong

    async def _relay(self) -> None:
        """Send the buffer, live batches first and then the backlog oldest first (see
        :meth:`NodeStore.relay_order`), one frame at a time; drop what the service judged."""
        while True:
            self._buffered.clear()
            batches = self.store.relay_order(BATCHES_PER_FRAME, live_after=self._live_after)
            if not batches:
                await self._buffered.wait()
                continue
            frame_id = f"r{batches[0].seq}-{batches[-1].seq}"
            future: asyncio.Future[list[dict[str, Any]]] = (
                asyncio.get_running_loop().create_future()
            )
            self._results[frame_id] = future
            try:
                await self._send(
                    encode("readings", id=frame_id, batches=[b.batch for b in batches])
                )
                async with asyncio.timeout(RESULT_TIMEOUT_S):
                    outcomes = await future
            finally:
                self._results.pop(frame_id, None)
            refused = sum(1 for o in outcomes if o.get("status") != 200)
            if refused:
                _log.warning("service refused %d relayed batch(es)", refused)
                self.store.bump("batches_refused", refused)
            self.store.drop([b.seq for b in batches])

    def _fail_pending(self) -> None:
        for future in self._results.values():
            if not future.done():
                future.cancel()
        if self._rotation is not None and not self._rotation.done():
            self._rotation.cancel()

    async def _device_event(self, name: str, data: dict[str, Any]) -> None:
        if self._ws is not None:
            with contextlib.suppress(ConnectionError, ConnectionClosed):
                await self._send(encode("event", name=name, data=data))

    # ------------------------------------------------------------------ leases

    async def _control_loop(self) -> None:
        """Every control cycle: a lease that lapsed, or any lease while the link is down,
        returns its device to its local policy."""
        while True:
            now = datetime.now(UTC)
            for lease in self.store.leases():
                if self._ws is None:
                    self._release(lease, "link_lost")
                elif now >= lease.expires_at:
                    self._release(lease, "lease_lapsed")
            await asyncio.sleep(self.config.control_cycle_s)

    def _release(self, lease: Lease, reason: str) -> None:
        """End ``lease`` (reported over the link, now or at the next link) and tell its
        device to return to its local policy."""
        at = datetime.now(UTC)
        report = {
            "zone": lease.zone,
            "device_id": lease.device_id,
            "command_id": lease.command_id,
            "reason": reason,
            "at": at.isoformat(),
        }
        if not self.store.end_lease(lease, report):
            return
        _log.info("lease of %s/%s ended (%s)", lease.zone, lease.device_id, reason)
        if self.bridge is not None:
            envelope = {
                "id": f"{lease.command_id}-release",
                "type": "release",
                "payload": {"command_id": lease.command_id, "reason": reason},
                "issued_at": at.isoformat(),
                "expires_at": (at + timedelta(seconds=RELEASE_TTL_S)).isoformat(),
            }
            task = asyncio.create_task(self._tell_device(lease, envelope))
            self._releases.add(task)
            task.add_done_callback(self._releases.discard)
        reporting = asyncio.create_task(self._send_lease_reports())
        self._releases.add(reporting)
        reporting.add_done_callback(self._releases.discard)

    async def _tell_device(self, lease: Lease, envelope: dict[str, Any]) -> None:
        assert self.bridge is not None
        expires_at = datetime.fromisoformat(envelope["expires_at"])
        ack = await self.bridge.command(
            lease.zone, lease.device_id, envelope, expires_at=expires_at
        )
        if ack is None:
            _log.warning("device %s/%s did not confirm its release", lease.zone, lease.device_id)

    async def _send_lease_reports(self) -> None:
        for seq, report in self.store.lease_reports():
            if self._ws is None:
                return
            try:
                await self._send(encode("event", name="lease.released", data=report))
            except (ConnectionError, ConnectionClosed):
                return
            self.store.drop_lease_report(seq)

    # ------------------------------------------------------------------ commands

    async def _on_command(self, command: dict[str, Any]) -> None:
        command_id = str(command.get("id"))
        known = self.store.command(command_id)
        if known is None and self.store.accept_command(command):
            # Started before the ack goes out (the ack still leaves first): a link lost
            # while acking must not leave a stored command unrun.
            self._spawn(command)
            await self._send(encode("ack", id=command_id, state="node_durable"))
            return
        # A resend (a lost ack, a reconnect): answer from the store, never run it again.
        await self._send(encode("ack", id=command_id, state="node_durable"))
        if known is not None and known.state == "node_durable":
            self._spawn(known.body)  # stored and not finished: running, or started now
        elif known is not None:
            await self._report(command_id)

    def _spawn(self, command: dict[str, Any]) -> None:
        command_id = str(command["id"])
        if command_id not in self._running:
            task = asyncio.create_task(self._execute(command))
            self._running[command_id] = task
            task.add_done_callback(lambda _: self._running.pop(command_id, None))

    async def _execute(self, command: dict[str, Any]) -> None:
        command_id = str(command["id"])
        # A diagnostics command touches nothing outside this process: its run is counted
        # in the write that records its outcome, so a kill can never leave a run counted
        # without its outcome (and the resumed command counted twice). Any other command
        # acts beyond the daemon (a device, the key, the config), so its run is on disk
        # before it starts.
        local = command.get("type") == CommandType.DIAGNOSTICS
        if not local:
            self.store.start_run(command_id)
        try:
            state, detail, result = await self._perform(command)
        except Exception as exc:  # a failing command is reported, the daemon goes on
            _log.exception("command %s failed", command_id)
            state, detail, result = "rejected", f"failed: {type(exc).__name__}", None
        self.store.finish_command(command_id, state, detail, result, count_run=local)
        await self._report(command_id)

    async def _report(self, command_id: str) -> None:
        stored: StoredCommand | None = self.store.command(command_id)
        if stored is None or stored.state == "node_durable" or self._ws is None:
            return
        try:
            await self._send(
                encode(
                    "ack",
                    id=command_id,
                    state=stored.state,
                    detail=stored.detail,
                    result=stored.result,
                )
            )
        except (ConnectionError, ConnectionClosed):
            return
        self.store.mark_reported(command_id)

    async def _perform(
        self, command: dict[str, Any]
    ) -> tuple[str, str | None, dict[str, Any] | None]:
        expires_at = datetime.fromisoformat(command["expires_at"])
        if datetime.now(UTC) >= expires_at:
            return "rejected", "expired before it ran", None
        kind = command.get("type")
        payload: dict[str, Any] = command.get("payload") or {}
        if kind == CommandType.DIAGNOSTICS:
            return "applied", None, self._diagnostic(str(payload.get("name")))
        if kind == CommandType.DEVICE:
            if self.bridge is None:
                return "rejected", "no device bridge configured on this node", None
            envelope = {
                "id": command["id"],
                "type": payload["type"],
                "payload": payload.get("payload", {}),
                "issued_at": command["issued_at"],
                "expires_at": command["expires_at"],
            }
            ack = await self.bridge.command(
                payload["zone"], payload["device_id"], envelope, expires_at=expires_at
            )
            if ack is None:
                return "rejected", "the device did not acknowledge before expiry", None
            status = "applied" if ack.get("status") == "applied" else "rejected"
            self._hold(command, payload, applied=status == "applied")
            detail = ack.get("detail")
            return status, detail if isinstance(detail, str) else None, {"device_ack": ack}
        if kind == CommandType.ROTATE_KEY:
            return await self._rotate_key()
        if kind == CommandType.CONFIG:
            return await self._apply_config(command)
        if kind == CommandType.SCHEDULE:
            return self._apply_schedule(command)
        return "rejected", f"unknown command type {kind!r}", None

    def _hold(self, command: dict[str, Any], payload: dict[str, Any], *, applied: bool) -> None:
        """An applied actuation holds its device for its lease; a stop ends the lease."""
        if not applied:
            return
        zone, device_id = str(payload["zone"]), str(payload["device_id"])
        lease_s = payload.get("lease_s")
        if payload["type"] in LEASED_DEVICE_COMMANDS and isinstance(lease_s, int):
            expires_at = datetime.now(UTC) + timedelta(seconds=lease_s)
            self.store.hold_lease(Lease(zone, device_id, str(command["id"]), expires_at))
        elif payload["type"] == "transfer.stop":
            self.store.clear_lease(zone, device_id)

    # ------------------------------------------------------------------ the schedule

    def _apply_schedule(
        self, command: dict[str, Any]
    ) -> tuple[str, str | None, dict[str, Any] | None]:
        """Make the command's schedule the one in force (on disk, replacing an older
        version in one transaction) and start its current slot."""
        payload: dict[str, Any] = command.get("payload") or {}
        try:
            schedule = parse_schedule(payload)
        except InvalidCommandError as exc:
            return "rejected", f"invalid schedule: {exc.detail}", None
        summary = {
            "version": schedule.version,
            "start": schedule.start.isoformat(),
            "end": schedule.end.isoformat(),
            "devices": len(schedule.devices),
        }
        current = self.store.schedule()
        if current is not None and current.command_id == command["id"]:
            return "applied", None, summary  # resumed after a restart: stored already
        if self.bridge is None:
            return "rejected", "no device bridge configured on this node", None
        now = self._now()
        if schedule.end <= now:
            return "rejected", "the schedule ended before it arrived", None
        in_force = self.store.replace_schedule(schedule.version, str(command["id"]), payload, now)
        if in_force is not None:
            return (
                "rejected",
                f"version {in_force} is in force; only a newer version replaces it",
                {"in_force": in_force},
            )
        _log.info("schedule version %d in force from %s", schedule.version, schedule.start)
        self._schedule_tick()
        return "applied", None, summary

    async def _schedule_loop(self) -> None:
        """Every control cycle: carry out the slot the schedule in force is in, with or
        without a link."""
        while True:
            try:
                self._schedule_tick()
            except Exception:  # the loop must outlive one bad tick
                _log.exception("schedule tick failed")
            await asyncio.sleep(self.config.control_cycle_s)

    def _schedule_tick(self) -> None:
        stored = self.store.schedule()
        if stored is None:
            return
        schedule = parse_schedule(stored.body)
        now = self._now()
        slot = schedule.slot_at(now)
        # A newer version replaced the one these setpoints belong to.
        for key, task in list(self._slot_tasks.items()):
            if key[0] != schedule.version:
                task.cancel()
        # Setpoints sent but unanswered when the daemon stopped: resumed in their slot,
        # reported unacknowledged after it.
        for run in self.store.slot_runs(schedule.version, status="sent"):
            if _slot_key(run) in self._slot_tasks:
                continue
            if run.slot == slot:
                self._spawn_slot(schedule, stored.command_id, run)
            else:
                self.store.finish_slot(
                    run, "unacknowledged", "the node stopped before the device answered", _iso(now)
                )
        due = slot if slot is not None else (SLOTS if now >= schedule.end else 0)
        if self._schedule_swept != (schedule.version, due):
            # Slots that came and went while the daemon was not running.
            missed = [
                SlotRun(
                    schedule.version,
                    s,
                    d.zone,
                    d.device_id,
                    d.setpoints_w[s],
                    "missed",
                    "the node was not running",
                    _iso(now),
                )
                for s in range(due)
                if schedule.slot_end(s) > stored.received_at
                for d in schedule.devices
                if d.setpoints_w[s] is not None
            ]
            if missed:
                self.store.claim_slots(missed)
            self._schedule_swept = (schedule.version, due)
        if slot is None:
            return
        held = {(lease.zone, lease.device_id) for lease in self.store.leases()}
        for device in schedule.devices:
            setpoint = device.setpoints_w[slot]
            if setpoint is None:
                continue
            run = SlotRun(
                schedule.version,
                slot,
                device.zone,
                device.device_id,
                setpoint,
                "sent",
                None,
                _iso(now),
            )
            if (device.zone, device.device_id) in held:
                skipped = replace(run, status="skipped", detail="held by a live actuation")
                if self.store.claim_slot(skipped):
                    self._report_slots()
            elif self.store.claim_slot(run):
                self._spawn_slot(schedule, stored.command_id, run)

    def _spawn_slot(self, schedule: Schedule, command_id: str, run: SlotRun) -> None:
        key = _slot_key(run)
        if key in self._slot_tasks or self.bridge is None:
            return
        task = asyncio.create_task(self._run_slot(schedule, command_id, run))
        self._slot_tasks[key] = task
        task.add_done_callback(lambda _: self._slot_tasks.pop(key, None))

    async def _run_slot(self, schedule: Schedule, command_id: str, run: SlotRun) -> None:
        """Publish the slot's setpoint to its device until it answers or the slot ends."""
        assert self.bridge is not None
        until = schedule.slot_end(run.slot)
        envelope = {
            "id": f"{command_id}-{run.slot:02d}",
            "type": "setpoint",
            "payload": {
                "setpoint_w": run.setpoint_w,
                "version": run.version,
                "slot": run.slot,
                "until": until.isoformat(),
            },
            "issued_at": _iso(self._now()),
            "expires_at": until.isoformat(),
        }
        try:
            ack = await self.bridge.command(run.zone, run.device_id, envelope, expires_at=until)
        except asyncio.CancelledError:
            if self._version_replaced(run.version):
                self.store.finish_slot(
                    run, "replaced", "a newer schedule version replaced it", _iso(self._now())
                )
            raise
        detail: str | None
        if ack is None:
            status, detail = "unacknowledged", "the device did not answer within its slot"
        else:
            status = "applied" if ack.get("status") == "applied" else "rejected"
            raw = ack.get("detail")
            detail = raw[:500] if isinstance(raw, str) else None
        self.store.finish_slot(run, status, detail, _iso(self._now()))
        self._report_slots()

    def _version_replaced(self, version: int) -> bool:
        stored = self.store.schedule()
        return stored is not None and stored.version != version

    def _report_slots(self) -> None:
        task = asyncio.create_task(self._send_slot_reports())
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _send_slot_reports(self) -> None:
        """Report finished slots over the link (one ``schedule.slots`` event per version
        and up to 96 slots); what is not sent now goes with the next link."""
        async with self._slot_report_lock:
            while self._ws is not None:
                runs = self.store.slot_reports(SLOT_REPORTS_PER_FRAME)
                if not runs:
                    return
                version = runs[0].version
                runs = [r for r in runs if r.version == version]
                data = {"version": version, "runs": [r.report() for r in runs]}
                try:
                    await self._send(encode("event", name="schedule.slots", data=data))
                except (ConnectionError, ConnectionClosed):
                    return
                self.store.mark_slots_reported(runs)

    # ------------------------------------------------------------------ desired config

    async def _apply_config(
        self, command: dict[str, Any]
    ) -> tuple[str, str | None, dict[str, Any] | None]:
        """Apply a config version atomically (``node.json`` replaced by one rename), link
        again with it, and keep it only if the link comes back within the rollback
        window; otherwise go back to the last good version by itself.

        The replaced version and the deadline are on disk (``node.json.pending``)
        before the change, so a daemon killed meanwhile resumes the same decision."""
        payload: dict[str, Any] = command.get("payload") or {}
        try:
            check_apply_payload(payload)
        except InvalidNodeConfigError as exc:
            return "rejected", f"invalid config: {exc.detail}", None
        version = int(payload["version"])
        pending_path = self.config.dir / PENDING_CONFIG_NAME
        pending = _read_pending(pending_path)
        if pending is not None and pending["command_id"] == command["id"]:
            # Resumed after a restart: every link of this process counts once the
            # candidate is in force.
            previous = NodeConfig(**pending["previous"])
            deadline = datetime.fromisoformat(pending["deadline"])
            opened = 0
        else:
            if version <= self.config.config_version:
                return "rejected", f"version {self.config.config_version} is already newer", None
            previous = self.config
            deadline = datetime.now(UTC) + timedelta(seconds=self._rollback_s)
            write_private_json(
                pending_path,
                {
                    "command_id": command["id"],
                    "previous": asdict(previous),
                    "deadline": deadline.isoformat(),
                },
            )
            opened = self.links_opened
        if self.config.config_version != version:
            candidate = replace(previous, **payload["config"], config_version=version)
            candidate.save()
            self.config = candidate
            opened = self.links_opened
            _log.info("config version %d applied; linking again with it", version)
            await self._relink()
        while datetime.now(UTC) < deadline:
            if self.linked.is_set() and self.links_opened > opened:
                pending_path.unlink(missing_ok=True)
                return "applied", None, {"version": version, "config": payload["config"]}
            await asyncio.sleep(0.05)
        # The link did not come back: the last good version, by the node itself.
        previous.save()
        self.config = previous
        pending_path.unlink(missing_ok=True)
        _log.warning(
            "config version %d rolled back to %d: no link within %.0f s",
            version,
            previous.config_version,
            self._rollback_s,
        )
        await self._relink()
        await self.linked.wait()
        return (
            "rejected",
            f"rolled back to version {previous.config_version}: "
            f"the link did not come back within {self._rollback_s:.0f} s",
            {"version": previous.config_version, "rolled_back": version},
        )

    async def _relink(self) -> None:
        """Drop the link so that the next one is dialled with the config now in force."""
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close(1000, "config changed")
        self._wake_dial.set()

    def _diagnostic(self, name: str) -> dict[str, Any]:
        if name == "ping":
            return {"pong": True, "uptime_s": int(time.monotonic() - self._started)}
        if name == "buffer":
            return {"depth": self.store.depth(), "lost": self.store.counter("batches_lost")}
        return {"devices": self.bridge.devices if self.bridge else {}}

    async def _rotate_key(self) -> tuple[str, str | None, dict[str, Any] | None]:
        await self.linked.wait()
        new = new_seed()
        public_key = challenge.public_key_hex(new)
        # On disk before it is announced: a crash after the service took it is recovered
        # by promoting this file when the old key is refused (see run()).
        write_key(self._next_key_path, new)
        assert self._nonce is not None
        signature = challenge.sign(
            challenge.rotation_message(self.config.node_id, self._nonce, public_key), new
        )
        self._rotation = asyncio.get_running_loop().create_future()
        await self._send(encode("rotate_key", public_key=public_key, signature=signature))
        async with asyncio.timeout(RESULT_TIMEOUT_S):
            answer = await self._rotation
        if answer.get("type") != "key_rotated":
            self._next_key_path.unlink(missing_ok=True)
            return "rejected", str(answer.get("code")), None
        os.replace(self._next_key_path, self._key_path)
        self._seed = new
        return "applied", None, {"public_key": public_key}

    def _promote_next_key(self) -> bool:
        if not self._next_key_path.exists():
            return False
        os.replace(self._next_key_path, self._key_path)
        self._seed = read_key(self._key_path)
        _log.warning("the service refused the old key; using the rotated one")
        return True


def _slot_key(run: SlotRun) -> tuple[int, int, str, str]:
    return (run.version, run.slot, run.zone, run.device_id)


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


def _read_pending(path: Path) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return doc
