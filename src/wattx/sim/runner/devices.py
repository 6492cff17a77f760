"""Virtual devices that obey the service's delivery plans, behind a simulated site node.

Each member's battery (and EV charger) is registered through the API as a
device behind its meter and behind the community's one edge node, enrolled
the way a real site's gateway is (an operator's registration token, the
node's own Ed25519 key). The node holds a link to the service and speaks its
frames: it answers the challenge, heartbeats (with its devices' state of
charge), takes ``device.command`` frames and reports each device's answer,
as ``wattx node run`` does for devices on the site's MQTT broker.

A device carries out the ``schedule`` setpoint of a trade (export positive,
import negative) during the delivery epoch, within its state of charge. A
seeded :class:`DeviceFaultPlan` makes some devices misbehave, one draw per
device and delivery epoch from the device's own stream (a device that trips
fails all its setpoints of the epoch):

- ``no_ack``: the node holds the command but the device never answers. The
  service fails the command, puts the device at risk and, once the epoch has
  started, refunds the trade (``timeout``).
- ``trip``: the device acks, delivers ``partial_share_ppm`` of its setpoint,
  trips, and its owner reports the fault (``POST /devices/{id}/telemetry``):
  the trade is refunded (``fault``).
- ``partial``: the device acks and delivers only ``partial_share_ppm`` of
  its setpoint; the meters show it and the trade settles under-delivered.

What the devices did feeds the meters. The household model's flows already
carry the energy its members traded (a seller's surplus, a buyer's load); a
device that carries out its setpoint changes nothing the meter sees, while
the part a device falls short by is taken off its owner's metered export (a
supplying device) or import (a taking device). So the service's measured
delivery follows what the devices really did.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import Any, Protocol

from wattx.incentives import Activity, IncentiveRules
from wattx.nodes import challenge
from wattx.nodes.frames import decode_service_frame, encode
from wattx.sim.errors import SimulationConfigError
from wattx.sim.runner.client import API, ServiceClient, Session
from wattx.sim.runner.clock import Timekeeper
from wattx.sim.runner.provision import MEMBER_PASSWORD, Member, gather_limited

_log = logging.getLogger(__name__)

PPM = 1_000_000
HEARTBEAT_S = 5.0
"""Wall seconds between the node's heartbeats."""
ACK_WAIT_S = 30.0
"""How long (wall) the in-process run waits for the node to answer an epoch's commands."""
NODE_VERSION = "wattx-sim-node/1"
PAGE = 200


class DeviceFault(StrEnum):
    NO_ACK = "no_ack"
    """The device never answers its command."""
    TRIP = "trip"
    """The device acks, delivers part of its setpoint, trips and reports the fault."""
    PARTIAL = "partial"
    """The device acks and delivers only part of its setpoint."""


@dataclass(frozen=True, slots=True)
class DeviceFaultPlan:
    """Probability of each fault per device and delivery epoch, in ppm (together at most
    one million), and the share of its setpoint a tripping or partial device delivers."""

    no_ack_ppm: int = 0
    trip_ppm: int = 0
    partial_ppm: int = 0
    partial_share_ppm: int = 500_000

    def __post_init__(self) -> None:
        rates = self._rates()
        if min(rates.values()) < 0 or sum(rates.values()) > PPM:
            raise SimulationConfigError(
                "device fault rates are ppm >= 0 summing to at most 1,000,000"
            )
        if not 0 <= self.partial_share_ppm < PPM:
            raise SimulationConfigError(
                "a faulty device delivers a share of 0 to 999,999 ppm of its setpoint",
                partial_share_ppm=self.partial_share_ppm,
            )

    def _rates(self) -> dict[DeviceFault, int]:
        return {
            DeviceFault.NO_ACK: self.no_ack_ppm,
            DeviceFault.TRIP: self.trip_ppm,
            DeviceFault.PARTIAL: self.partial_ppm,
        }

    def draw(self, rng: random.Random) -> DeviceFault | None:
        roll = rng.randrange(PPM)
        for fault, ppm in self._rates().items():
            if roll < ppm:
                return fault
            roll -= ppm
        return None


class LinkConnection(Protocol):
    """One open link, as the node sees it."""

    async def send(self, text: str) -> None: ...

    async def recv(self) -> str:
        """The next frame; :class:`ConnectionError` once the service closed the link."""


LinkDialer = Callable[[], AbstractAsyncContextManager[LinkConnection]]
"""Opens a link to the service (a WebSocket, or an in-process pair)."""


class DeliveryWorker(Protocol):
    """What a service's chain worker does for delivery, for a service that runs none."""

    async def plan(self) -> int:
        """Plan the closed epochs; returns how many device commands were queued."""

    async def sweep(self) -> None:
        """Settle the commands' acks, and the timeouts."""

    async def answers_recorded(self) -> int:
        """How many delivery commands the service has the device's answer to."""

    async def report_periods(self) -> list[int]:
        """Report the ended node-incentive periods (the incentive worker's round)."""


class _WebSocketLink:
    def __init__(self, ws: Any) -> None:
        self._ws = ws

    async def send(self, text: str) -> None:
        await self._ws.send(text)

    async def recv(self) -> str:
        from websockets.exceptions import ConnectionClosed

        try:
            raw = await self._ws.recv()
        except ConnectionClosed as exc:
            raise ConnectionError("link closed") from exc
        return raw if isinstance(raw, str) else raw.decode()


def websocket_dialer(base_url: str) -> LinkDialer:
    """Dial ``/api/v1/nodes/link`` of a service at ``base_url`` (``http(s)://…``)."""
    link_url = base_url.replace("http", "ws", 1).rstrip("/") + f"{API}/nodes/link"

    @asynccontextmanager
    async def dial() -> AsyncIterator[LinkConnection]:
        import websockets

        async with websockets.connect(link_url, max_size=1024 * 1024) as ws:
            yield _WebSocketLink(ws)

    return dial


@dataclass
class SetpointRun:
    """A ``schedule`` command a device acked, and what it did with it."""

    trade_id: str
    epoch_id: int
    energy_wh: int
    """Planned: export positive, import negative."""
    fault: DeviceFault | None
    done_wh: int = 0
    """Carried out, in the setpoint's direction (never negative)."""


@dataclass
class VirtualDevice:
    """A device's limits and state, as the simulated household's hardware has them."""

    id: str
    member: Member
    kind: str
    rated_power_w: int
    capacity_wh: int
    reserve_wh: int
    soc_wh: int
    rng: random.Random
    runs: list[SetpointRun] = field(default_factory=list)
    """Setpoints acked and not yet carried out."""
    done: list[SetpointRun] = field(default_factory=list)
    """Setpoints carried out."""
    faults: dict[int, DeviceFault | None] = field(default_factory=dict)
    """The fault drawn for each delivery epoch the device had a command for."""
    seen: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    """Command ids answered, with the ack (``None``: held, never answered)."""

    def carry_out(self, run: SetpointRun, share_ppm: int) -> int:
        """Do ``run`` within the state of charge; returns the shortfall in Wh."""
        planned = abs(run.energy_wh)
        wanted = planned if run.fault is None else planned * share_ppm // PPM
        if run.energy_wh > 0:
            done = min(wanted, max(self.soc_wh - self.reserve_wh, 0))
            self.soc_wh -= done
        else:
            done = min(wanted, max(self.capacity_wh - self.soc_wh, 0))
            self.soc_wh += done
        run.done_wh = done
        return planned - done


@dataclass
class DeliveryFigures:
    """What the devices and the service's delivery records say at the end of a run."""

    devices: int = 0
    commands: Counter[str] = field(default_factory=Counter)
    """By the service's status (``sent``, ``acked``, ``failed``) plus ``late`` (acked
    after its expiry) and ``total``."""
    device_faults: Counter[str] = field(default_factory=Counter)
    """Faults the devices suffered (the plan's draws)."""
    trips_reported: int = 0
    devices_at_risk: int = 0
    deliveries_by_state: Counter[str] = field(default_factory=Counter)
    traded_wh: int = 0
    """Contracted Wh of the physical trades (what the buyers were to receive)."""
    delivered_wh: int = 0
    """What the meters proved of them."""
    refunds: int = 0
    imbalance_charges: int = 0
    under_delivered: int = 0
    """Physical trades measured below their contract, refunded ones included."""
    delivered_in_full: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "devices": self.devices,
            "physical_trades": sum(self.deliveries_by_state.values()),
            "deliveries_by_state": dict(sorted(self.deliveries_by_state.items())),
            "delivered_in_full": self.delivered_in_full,
            "under_delivered": self.under_delivered,
            "traded_wh": self.traded_wh,
            "delivered_wh": self.delivered_wh,
            "imbalance_wh": self.traded_wh - self.delivered_wh,
            "refunds": self.refunds,
            "imbalance_charges": self.imbalance_charges,
            "commands": dict(sorted(self.commands.items())),
            "device_faults": dict(sorted(self.device_faults.items())),
            "trips_reported": self.trips_reported,
            "devices_at_risk": self.devices_at_risk,
        }


@dataclass(frozen=True, slots=True)
class NodeRewardFigures:
    """A site node's incentives at the end of a run, as the service's API shows them."""

    node_id: str
    bond: int
    periods_reported: int
    uptime_bps: int
    """Mean over the reported periods."""
    up_slots: int
    readings: int
    commands_done: int
    commands_failed: int
    score: int
    """The activity's score by the governed weights, summed over the reported periods
    (docs/nodes.md); a period in which the bond was below the minimum is paid nothing."""
    earned: int
    claimed: int
    pending: int
    slashed: int
    """Bond slashed in the run (held, appealed or final)."""

    def as_json(self) -> dict[str, object]:
        return {
            "node_id": self.node_id,
            "bond": self.bond,
            "periods_reported": self.periods_reported,
            "uptime_bps": self.uptime_bps,
            "up_slots": self.up_slots,
            "readings": self.readings,
            "commands_done": self.commands_done,
            "commands_failed": self.commands_failed,
            "score": self.score,
            "earned": self.earned,
            "claimed": self.claimed,
            "pending": self.pending,
            "slashed": self.slashed,
        }


def node_seed(seed: int, run_tag: str) -> bytes:
    return hashlib.blake2b(f"node|{seed}|{run_tag}".encode(), digest_size=32).digest()


class DeviceFleet:
    """The community's devices and its site node, driven through the API and the link.

    ``worker`` is given for a service that runs no chain worker (the in-process
    service): the fleet then plans and sweeps at the moments the worker would.
    """

    def __init__(
        self,
        dialer: LinkDialer,
        plan: DeviceFaultPlan,
        *,
        worker: DeliveryWorker | None = None,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self._dialer = dialer
        self._plan = plan
        self._worker = worker
        self._heartbeat_s = heartbeat_s
        self._devices: dict[str, VirtualDevice] = {}
        self._client: ServiceClient | None = None
        self._operator: Session | None = None
        self._clock: Timekeeper | None = None
        self._node_id = ""
        self._owner: Session | None = None
        self._seed = b""
        self._link_task: asyncio.Task[None] | None = None
        self._linked = asyncio.Event()
        self._answered = 0
        self._final_acks = 0
        self._answer_event = asyncio.Event()
        self._trips = 0
        self._fault_log: Counter[str] = Counter()
        self._zone_members: set[str] = set()

    @property
    def devices(self) -> Mapping[str, VirtualDevice]:
        return self._devices

    @property
    def node_id(self) -> str:
        """The site node's id (empty before :meth:`install`)."""
        return self._node_id

    async def install(
        self,
        client: ServiceClient,
        operator: Session,
        members: Sequence[Member],
        meter_ids: Mapping[str, str],
        clock: Timekeeper,
        *,
        seed: int,
        run_tag: str,
        run_s: int,
    ) -> None:
        """Enrol the site node, bond it and fund the reward pool for ``run_s`` simulated
        seconds, attach the meters, register the devices, open the link."""
        self._client, self._operator, self._clock = client, operator, clock
        self._zone_members = {m.session.user_id for m in members}
        email = f"site-node.{run_tag}@community.wattx.test"
        owner_id = await client.sign_up(email, MEMBER_PASSWORD, "Community site", "node_operator")
        await client.require(
            "PATCH",
            f"{API}/admin/users/{owner_id}",
            operator,
            json={"status": "admitted", "role": "node_operator"},
        )
        token = await client.require(
            "POST",
            f"{API}/nodes/registration-tokens",
            operator,
            json={"owner_id": owner_id, "name": f"site-{run_tag}", "ttl_s": 3600},
        )
        self._seed = node_seed(seed, run_tag)
        enrolled = await client.require(
            "POST",
            f"{API}/nodes/enrol",
            json={
                "registration_token": token["token"],
                "public_key": challenge.public_key_hex(self._seed),
            },
        )
        self._node_id = enrolled["node_id"]
        self._owner = await client.login(email, MEMBER_PASSWORD)
        await self._bond_and_fund(owner_id, run_s)
        jobs: list[Callable[[], Awaitable[list[VirtualDevice]]]] = [
            partial(self._install_member, member, meter_ids[member.spec.id], seed)
            for member in members
            if member.spec.battery is not None or member.spec.ev is not None
        ]
        for devices in await gather_limited(jobs):
            self._devices.update((d.id, d) for d in devices)
        self._link_task = asyncio.create_task(self._hold_link())
        async with asyncio.timeout(ACK_WAIT_S):
            await self._linked.wait()

    async def _bond_and_fund(self, owner_id: str, run_s: int) -> None:
        """The node's owner bonds twice the minimum bond, so that a slash or two leave it
        earning (credit the operator deposited for it, withdrawn to its wallet); the
        operator funds the pool with a period's budget for
        every period the run spans, and one more."""
        assert self._client is not None
        assert self._operator is not None
        assert self._owner is not None
        client, operator, owner = self._client, self._operator, self._owner
        overview = await client.require("GET", f"{API}/incentives", operator)
        bond = 2 * overview["parameters"]["incentive_min_bond"]
        budget = overview["parameters"]["incentive_budget_per_period"]
        await client.require(
            "POST",
            f"{API}/admin/users/{owner_id}/credit-deposits",
            operator,
            json={"amount": bond},
        )
        await client.require(
            "POST", f"{API}/wallet/withdraw", owner, json={"asset": "credit", "amount": bond}
        )
        await client.require(
            "POST", f"{API}/nodes/{self._node_id}/bond", owner, json={"amount": bond}
        )
        periods = -(-run_s // overview["period_s"]) + 1
        await client.require(
            "POST", f"{API}/incentives/pool", operator, json={"amount": budget * periods}
        )

    async def _install_member(
        self, member: Member, meter_id: str, seed: int
    ) -> list[VirtualDevice]:
        assert self._client is not None
        assert self._operator is not None
        await self._client.require(
            "PUT", f"{API}/nodes/{self._node_id}/meters/{meter_id}", self._operator
        )
        spec = member.spec
        bodies: list[dict[str, Any]] = []
        if spec.battery is not None:
            b = spec.battery
            bodies.append(
                {
                    "name": "battery",
                    "kind": "battery",
                    "rated_power_w": min(b.max_charge_w, b.max_discharge_w),
                    "capacity_wh": b.capacity_wh,
                    "reserve_wh": b.soc_min_wh,
                    "soc_wh": (b.soc_min_wh + b.soc_max_wh) // 2,
                }
            )
        if spec.ev is not None:
            bodies.append(
                {
                    "name": "ev charger",
                    "kind": "ev_charger",
                    "rated_power_w": spec.ev.charger_w,
                    "capacity_wh": spec.ev.battery_wh,
                    "reserve_wh": 0,
                    "soc_wh": spec.ev.battery_wh // 2,
                }
            )
        devices = []
        for body in bodies:
            row = await self._client.require(
                "POST",
                f"{API}/devices",
                member.session,
                json={"meter_id": meter_id, "node_id": self._node_id, **body},
            )
            devices.append(
                VirtualDevice(
                    id=row["id"],
                    member=member,
                    kind=body["kind"],
                    rated_power_w=body["rated_power_w"],
                    capacity_wh=body["capacity_wh"],
                    reserve_wh=body["reserve_wh"],
                    soc_wh=body["soc_wh"],
                    rng=random.Random(f"devices|{seed}|{spec.id}|{body['kind']}"),
                )
            )
        return devices

    # ------------------------------------------------------------------ the link

    async def _hold_link(self) -> None:
        """Keep the node linked; a dropped link is dialled again after a second."""
        while True:
            try:
                async with self._dialer() as link:
                    await self._session(link)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the service restarting, a refused dial
                _log.warning("site node link lost: %s", exc)
            self._linked.clear()
            await asyncio.sleep(1.0)

    async def _session(self, link: LinkConnection) -> None:
        hello = decode_service_frame(await link.recv())
        if hello.get("type") != "challenge" or not isinstance(hello.get("nonce"), str):
            raise ConnectionError("the service did not send a challenge")
        signature = challenge.sign(
            challenge.link_message(self._node_id, hello["nonce"]), self._seed
        )
        await link.send(encode("auth", node_id=self._node_id, signature=signature))
        welcome = decode_service_frame(await link.recv())
        if welcome.get("type") != "welcome":
            raise ConnectionError(f"the service refused the link: {welcome}")
        self._linked.set()
        started = time.monotonic()
        heartbeats = asyncio.create_task(self._heartbeats(link, started))
        try:
            while True:
                frame = decode_service_frame(await link.recv())
                if frame.get("type") == "command" and isinstance(frame.get("command"), dict):
                    await self._on_command(link, frame["command"])
        finally:
            heartbeats.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await heartbeats

    async def _heartbeats(self, link: LinkConnection, started: float) -> None:
        while True:
            await link.send(
                encode(
                    "heartbeat",
                    uptime_s=int(time.monotonic() - started),
                    version=NODE_VERSION,
                    buffer_depth=0,
                    devices={d.id: {"soc_wh": d.soc_wh} for d in self._devices.values()},
                )
            )
            await asyncio.sleep(self._heartbeat_s)

    async def _on_command(self, link: LinkConnection, command: dict[str, Any]) -> None:
        command_id = str(command.get("id"))
        await link.send(encode("ack", id=command_id, state="node_durable"))
        payload: dict[str, Any] = command.get("payload") or {}
        device = self._devices.get(str(payload.get("device_id")))
        if device is None:
            await self._report(link, command_id, "rejected", "no such device at this site")
            return
        if command_id in device.seen:
            # A resend: the same answer again (none for a device that never answers).
            ack = device.seen[command_id]
            if ack is not None:
                await self._report(link, command_id, ack["status"], ack.get("detail"))
            return
        state, detail = self._apply(device, command, payload, self._fault_of(device, payload))
        device.seen[command_id] = None if state is None else {"status": state, "detail": detail}
        self._answered += 1
        self._answer_event.set()
        if state is not None:
            await self._report(link, command_id, state, detail)
            self._final_acks += 1
            self._answer_event.set()

    def _fault_of(self, device: VirtualDevice, payload: dict[str, Any]) -> DeviceFault | None:
        """The device's fault in the command's delivery epoch: one draw per device and
        epoch, in epoch order, so a seed gives the same faults whatever order the
        epoch's commands arrive in. A command for no epoch meets none."""
        inner = payload.get("payload")
        epoch_id = inner.get("epoch_id") if isinstance(inner, dict) else None
        if not isinstance(epoch_id, int):
            return None
        if epoch_id not in device.faults:
            fault = self._plan.draw(device.rng)
            device.faults[epoch_id] = fault
            if fault is not None:
                self._fault_log[fault.value] += 1
        return device.faults[epoch_id]

    def _apply(
        self,
        device: VirtualDevice,
        command: dict[str, Any],
        payload: dict[str, Any],
        fault: DeviceFault | None,
    ) -> tuple[str | None, str | None]:
        """The device's answer to a command: ``(None, None)`` when it never answers."""
        assert self._clock is not None
        if fault is DeviceFault.NO_ACK:
            return None, None
        if datetime.fromisoformat(command["expires_at"]) <= self._clock.now():
            return "rejected", "expired"
        inner: dict[str, Any] = payload.get("payload") or {}
        if payload.get("type") != "schedule":
            return "applied", None
        energy = inner.get("energy_wh")
        power = inner.get("power_w")
        if not isinstance(energy, int) or not isinstance(power, int):
            return "rejected", "a schedule needs whole energy_wh and power_w"
        if abs(power) > device.rated_power_w:
            return "rejected", "power above the rating"
        device.runs.append(
            SetpointRun(str(inner.get("trade_id")), int(inner.get("epoch_id", -1)), energy, fault)
        )
        return "applied", None

    @staticmethod
    async def _report(
        link: LinkConnection, command_id: str, state: str, detail: str | None
    ) -> None:
        ack = {"id": command_id, "status": state, **({"detail": detail} if detail else {})}
        await link.send(
            encode("ack", id=command_id, state=state, detail=detail, result={"device_ack": ack})
        )

    # ------------------------------------------------------------------ the epoch loop

    async def gate_closed(self) -> None:
        """After a gate closed: with a worker, plan now and wait for the devices' answers."""
        if self._worker is None:
            return
        before = self._answered
        queued = await self._worker.plan()
        deadline = time.monotonic() + ACK_WAIT_S
        while self._answered - before < queued and time.monotonic() < deadline:
            self._answer_event.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await self._answer_event.wait()
        # The answers reach the service's books before the clock moves on.
        while time.monotonic() < deadline:
            if await self._worker.answers_recorded() >= self._final_acks:
                break
            await asyncio.sleep(0.02)
        await self._worker.sweep()

    async def epoch_ended(self, epoch_id: int) -> dict[str, int]:
        """The devices carry out the epoch's setpoints; tripped ones report it.

        Returns, per member id, what its devices' shortfall changes in its
        metered net export (negative: a supplier exported less; positive: a
        taker imported less).
        """
        assert self._client is not None
        if self._worker is not None:
            await self._worker.sweep()
            await self._worker.report_periods()
        change: Counter[str] = Counter()
        tripped: list[VirtualDevice] = []
        moved: list[VirtualDevice] = []
        for device in self._devices.values():
            due = [r for r in device.runs if r.epoch_id == epoch_id]
            if not due:
                continue
            for run in due:
                shortfall = device.carry_out(run, self._plan.partial_share_ppm)
                sign = -1 if run.energy_wh > 0 else 1
                change[device.member.spec.id] += sign * shortfall
            if any(r.done_wh for r in due):
                moved.append(device)
            if any(r.fault is DeviceFault.TRIP for r in due):
                tripped.append(device)
            device.done.extend(due)
            device.runs = [r for r in device.runs if r.epoch_id > epoch_id]

        async def report_trip(device: VirtualDevice) -> None:
            assert self._client is not None
            await self._client.require(
                "POST",
                f"{API}/devices/{device.id}/telemetry",
                device.member.session,
                json={"epoch_id": epoch_id, "fault": "tripped during delivery"},
            )

        async def report_soc(device: VirtualDevice) -> None:
            # The owner keeps the registry's state of charge current, so the next plans
            # ask only for what the device holds.
            assert self._client is not None
            await self._client.require(
                "PATCH",
                f"{API}/devices/{device.id}",
                device.member.session,
                json={"soc_wh": device.soc_wh},
            )

        reports: list[Callable[[], Awaitable[None]]] = [partial(report_soc, d) for d in moved]
        reports += [partial(report_trip, d) for d in tripped]
        await gather_limited(reports)
        self._trips += len(tripped)
        return dict(change)

    # ------------------------------------------------------------------ the figures

    async def figures(self, first_epoch: int, last_epoch: int) -> DeliveryFigures:
        """The service's records of the run's devices, commands and deliveries."""
        assert self._client is not None
        assert self._operator is not None
        figures = DeliveryFigures(devices=len(self._devices), trips_reported=self._trips)
        for device in self._devices.values():
            for command in await self._pages(
                f"{API}/devices/{device.id}/commands", device.member.session
            ):
                figures.commands["total"] += 1
                figures.commands[command["status"]] += 1
                acked = command.get("acked_at")
                if acked is not None and datetime.fromisoformat(acked) > datetime.fromisoformat(
                    command["expires_at"]
                ):
                    figures.commands["late"] += 1
        figures.device_faults = Counter(self._fault_log)
        at_risk = await self._pages(f"{API}/devices/at-risk", self._operator)
        figures.devices_at_risk = sum(1 for d in at_risk if d["id"] in self._devices)
        for delivery in await self._pages(f"{API}/deliveries", self._operator):
            if not first_epoch <= delivery["epoch_id"] <= last_epoch:
                continue
            if delivery["seller"] not in self._zone_members:
                continue
            figures.deliveries_by_state[delivery["state"]] += 1
            if delivery["delivered_wh"] is None:
                continue
            figures.traded_wh += delivery["contracted_wh"]
            figures.delivered_wh += delivery["delivered_wh"]
            figures.refunds += delivery["refund"] or 0
            figures.imbalance_charges += delivery["imbalance_charge"] or 0
            if delivery["delivered_wh"] < delivery["contracted_wh"]:
                figures.under_delivered += 1
            else:
                figures.delivered_in_full += 1
        return figures

    async def rewards(self) -> list[NodeRewardFigures]:
        """Each site node's rewards: the ended periods are reported (with a worker), the
        owner claims what is pending, then the API's view of the node is read."""
        assert self._client is not None
        assert self._operator is not None
        assert self._owner is not None
        client, owner = self._client, self._owner
        if self._worker is not None:
            await self._worker.report_periods()
        base = f"{API}/nodes/{self._node_id}"
        if (await client.require("GET", f"{base}/rewards", owner))["pending"] > 0:
            await client.require("POST", f"{base}/rewards/claim", owner)
        view = await client.require("GET", f"{base}/rewards", owner)
        overview = await client.require("GET", f"{API}/incentives", self._operator)
        rules = IncentiveRules.of(overview["parameters"])
        reported = [p for p in view["periods"] if p["reward"] is not None]
        score = sum(
            rules.score(
                Activity(
                    node_id=self._node_id,
                    uptime_bps=p["uptime_bps"],
                    readings=p["readings"],
                    commands_done=p["commands_done"],
                ),
                rules.min_bond,
            )
            for p in reported
        )
        return [
            NodeRewardFigures(
                node_id=self._node_id,
                bond=view["bond"],
                periods_reported=len(reported),
                uptime_bps=(
                    sum(p["uptime_bps"] for p in reported) // len(reported) if reported else 0
                ),
                up_slots=sum(p["up_slots"] for p in reported),
                readings=sum(p["readings"] for p in reported),
                commands_done=sum(p["commands_done"] for p in reported),
                commands_failed=sum(p["commands_failed"] for p in reported),
                score=score,
                earned=view["earned"],
                claimed=view["claimed"],
                pending=view["pending"],
                slashed=sum(s["amount"] for s in view["slashes"] if s["state"] != "reversed"),
            )
        ]

    async def _pages(self, path: str, session: Session) -> list[dict[str, Any]]:
        assert self._client is not None
        items: list[dict[str, Any]] = []
        offset = 0
        while True:
            body = await self._client.require(
                "GET", path, session, params={"limit": PAGE, "offset": offset}
            )
            page: list[dict[str, Any]] = body["items"]
            items.extend(page)
            if len(page) < PAGE:
                return items
            offset += PAGE

    async def stop(self) -> None:
        if self._link_task is not None:
            self._link_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._link_task
            self._link_task = None


__all__ = [
    "DeliveryFigures",
    "DeliveryWorker",
    "DeviceFault",
    "DeviceFaultPlan",
    "DeviceFleet",
    "LinkConnection",
    "LinkDialer",
    "NodeRewardFigures",
    "websocket_dialer",
]
