"""Devices and physical delivery: the registry, plans and commands, measured delivery.

A trade **needs physical delivery** when both its seller and its buyer have at
least one registered (not removed) device when the epoch's batch is written.
Other trades settle as before (the contracted quantity, less line losses).

- **Plans and commands** (:meth:`DeliveryService.plan_due`): every closed epoch
  whose physical trades have no delivery row yet gets one per trade (state
  ``open``) and a plan (:func:`wattx.devices.plans.build_plans`); each planned
  device gets a ``schedule`` command with its setpoint over the node link
  (``device.command``, see ``docs/nodes.md``), expiring at the epoch's start.
- **Acks** (:meth:`DeliveryService.sweep`): a device command whose node command
  was applied is ``acked``; one rejected, expired or past its expiry unacked
  is ``failed`` and its device ``at_risk`` (a ``device.alert`` event).
- **Refunds before measurement**: a seller's or operator's
  :meth:`DeliveryService.cancel`, a ``timeout`` (commands not acked by the
  epoch's start plus ``start_grace_s``) and a ``fault`` (a rejected setpoint,
  or a trip reported by :meth:`DeliveryService.telemetry`) refund the trade;
  its batch settles it as undelivered.
- **Telemetry** (:meth:`DeliveryService.telemetry`): device-reported energy
  beyond the tolerance from its meter's verified energy is refused, alerted
  and counted; the meter wins.
- **Measured delivery** (:meth:`DeliveryService.measure` and :meth:`record`,
  called by the settlement worker when it writes the epoch's batch, after the
  delivery epoch plus ``delivery_grace_s``): each party's metered export
  (verified) and import over the meters behind its devices, allocated by
  :func:`wattx.devices.allocation.reconcile`; the outcome is stored on the
  delivery row and applied to the off-chain balances in the same transaction
  as the outbox row, and the batch settles the same numbers on chain.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, and_, func, insert, or_, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.bus.events import Event, EventType
from wattx.bus.port import EventBus
from wattx.devices.allocation import (
    DeliveryOutcome,
    cap_to_credit,
    reconcile,
    refunded_outcome,
)
from wattx.devices.errors import (
    DeliveryBalanceShortError,
    DeliveryCancelForbiddenError,
    DeliveryGracePendingError,
    DeliveryNotFoundError,
    DeliveryTransitionError,
    DeviceNotFoundError,
    DuplicateCommandError,
    InvalidDeviceError,
    InvalidScheduleError,
    MeterEpochPendingError,
    SetpointOutOfLimitsError,
    StaleCommandError,
    TelemetryContradictsMeterError,
)
from wattx.devices.lifecycle import TRANSITIONS, DeliveryEvent, DeliveryState, advance
from wattx.devices.model import DeviceKind, DeviceLimits, DeviceProtocol
from wattx.devices.plans import (
    Budget,
    DeliveryPlan,
    PlannedDevice,
    ScheduledSlot,
    build_plans,
    scheduled_budget,
)
from wattx.devices.scheduling.dayahead import (
    BatterySpec,
    Forecast,
    Schedule,
    ScheduleInputError,
    schedule_day_ahead,
)
from wattx.domain.epochs import EpochClock, EpochSchedule
from wattx.domain.errors import DomainError
from wattx.domain.ids import new_id
from wattx.domain.trades import Trade
from wattx.domain.zones import Tariff, TimeOfUseBand
from wattx.nodes.commands import CommandState, CommandType
from wattx.services.measurement.delivery_metrics import DeliveryMetrics
from wattx.services.principal import Principal
from wattx.settlement.batch import MeasuredDelivery
from wattx.store.balances import FEE_ACCOUNT, Asset, balance_for_update, lock_balances
from wattx.store.chunks import chunks
from wattx.store.delivery_states import count_moves, state_counts
from wattx.store.models import BalanceRow, EpochRow, MeterRow, TradeRow, ZoneRow
from wattx.store.models_devices import DeviceCommandRow, DeviceRow, TradeDeliveryRow
from wattx.store.models_metering import MeterEpochEnergyRow
from wattx.store.models_nodes import NodeCommandRow, NodeMeterRow, NodeRow
from wattx.store.models_statements import LedgerEntryRow
from wattx.store.reference_inputs import DeliveryRecord, add_measured_deliveries
from wattx.store.trades import trade_from_row

ACTIVE = "active"
AT_RISK = "at_risk"
REMOVED = "removed"

CMD_SENT = "sent"
CMD_ACKED = "acked"
CMD_FAILED = "failed"

DEVICE_COMMAND_TYPES = ("lock", "unlock", "transfer.start", "transfer.stop", "schedule")
MAX_COMMAND_TTL_S = 86_400


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    name: str
    kind: DeviceKind
    protocol: DeviceProtocol
    meter_id: str
    node_id: str | None
    rated_power_w: int
    capacity_wh: int
    reserve_wh: int
    soc_wh: int | None


def limits_of(row: DeviceRow) -> DeviceLimits:
    return DeviceLimits(
        kind=DeviceKind(row.kind),
        rated_power_w=row.rated_power_w,
        capacity_wh=row.capacity_wh,
        reserve_wh=row.reserve_wh,
    )


class DeliveryService:
    """The device registry, delivery plans and commands, and measured delivery."""

    def __init__(
        self,
        db: Any,
        bus: EventBus,
        clock: EpochClock,
        schedule: EpochSchedule,
        *,
        grace_s: int,
        start_grace_s: int = 30,
        telemetry_tolerance_wh: int = 50,
        telemetry_tolerance_pct: int = 10,
        metrics: DeliveryMetrics | None = None,
    ) -> None:
        self._db = db
        self._bus = bus
        self._clock = clock
        self._schedule = schedule
        self._grace = timedelta(seconds=grace_s)
        self._start_grace = timedelta(seconds=start_grace_s)
        self._tolerance_wh = telemetry_tolerance_wh
        self._tolerance_pct = telemetry_tolerance_pct
        self.metrics = metrics if metrics is not None else DeliveryMetrics()

    # -- registry -------------------------------------------------------------

    async def register(self, principal: Principal, spec: DeviceSpec) -> DeviceRow:
        limits = DeviceLimits(spec.kind, spec.rated_power_w, spec.capacity_wh, spec.reserve_wh)
        self._check_soc(limits, spec.soc_wh)
        now = self._clock.now()
        async with self._db.write() as session:
            meter = await session.get(MeterRow, spec.meter_id)
            if meter is None or meter.owner_id != principal.user_id:
                raise InvalidDeviceError(
                    "a device sits behind one of your meters", meter_id=spec.meter_id
                )
            if spec.node_id is not None:
                attached = await session.get(NodeMeterRow, spec.meter_id)
                if attached is None or attached.node_id != spec.node_id:
                    raise InvalidDeviceError(
                        "the device's node must be the one its meter is attached to",
                        node_id=spec.node_id,
                        meter_id=spec.meter_id,
                    )
            row = DeviceRow(
                id=new_id(),
                owner_id=principal.user_id,
                meter_id=spec.meter_id,
                node_id=spec.node_id,
                name=spec.name,
                kind=spec.kind.value,
                protocol=spec.protocol.value,
                rated_power_w=spec.rated_power_w,
                capacity_wh=spec.capacity_wh,
                reserve_wh=spec.reserve_wh,
                soc_wh=spec.soc_wh,
                status=ACTIVE,
                created_at=now,
                updated_at=now,
            )
            session.add(row)
        await self._publish_device(row)
        return row

    async def list_devices(
        self, principal: Principal, *, limit: int, offset: int
    ) -> list[DeviceRow]:
        query = select(DeviceRow).where(DeviceRow.status != REMOVED)
        if not principal.role.sees_everything:
            query = query.where(DeviceRow.owner_id == principal.user_id)
        query = query.order_by(DeviceRow.created_at, DeviceRow.id).limit(limit).offset(offset)
        async with self._db.read() as session:
            return list(await session.scalars(query))

    async def get_device(self, principal: Principal, device_id: str) -> DeviceRow:
        async with self._db.read() as session:
            return await self._visible(session, principal, device_id)

    async def update(
        self,
        principal: Principal,
        device_id: str,
        *,
        reserve_wh: int | None,
        soc_wh: int | None,
    ) -> DeviceRow:
        """The owner sets the reserve; the owner (or its node) reports the state of charge."""
        async with self._db.write() as session:
            row = await self._owned(session, principal, device_id)
            reserve = row.reserve_wh if reserve_wh is None else reserve_wh
            limits = DeviceLimits(DeviceKind(row.kind), row.rated_power_w, row.capacity_wh, reserve)
            soc = row.soc_wh if soc_wh is None else soc_wh
            self._check_soc(limits, soc)
            row.reserve_wh = reserve
            row.soc_wh = soc
            row.updated_at = self._clock.now()
        await self._publish_device(row)
        return row

    async def remove(self, principal: Principal, device_id: str) -> DeviceRow:
        async with self._db.write() as session:
            row = await self._owned(session, principal, device_id)
            row.status = REMOVED
            row.updated_at = self._clock.now()
        await self._publish_device(row)
        return row

    @staticmethod
    def _check_soc(limits: DeviceLimits, soc_wh: int | None) -> None:
        if soc_wh is None:
            return
        if limits.capacity_wh == 0 or not 0 <= soc_wh <= limits.capacity_wh:
            raise InvalidDeviceError(
                "a state of charge needs storage and lies in 0..capacity",
                soc_wh=soc_wh,
                capacity_wh=limits.capacity_wh,
            )

    async def _visible(
        self, session: AsyncSession, principal: Principal, device_id: str
    ) -> DeviceRow:
        row = await session.get(DeviceRow, device_id)
        if (
            row is None
            or row.status == REMOVED
            or (not principal.role.sees_everything and row.owner_id != principal.user_id)
        ):
            raise DeviceNotFoundError("no such device", device_id=device_id)
        return row

    async def _owned(
        self, session: AsyncSession, principal: Principal, device_id: str
    ) -> DeviceRow:
        row = await session.get(DeviceRow, device_id, with_for_update=self._db.locks_rows)
        if row is None or row.status == REMOVED or row.owner_id != principal.user_id:
            raise DeviceNotFoundError("no such device", device_id=device_id)
        return row

    # -- commands ---------------------------------------------------------------

    async def send_command(
        self,
        principal: Principal,
        device_id: str,
        *,
        command_id: str,
        type_: str,
        payload: dict[str, Any],
        expires_at: datetime,
    ) -> DeviceCommandRow:
        """A command from the device's owner (or an operator) to the device, over its node.

        A refused command (stale, duplicate, out of limits...) is counted by its code."""
        try:
            async with self._db.write() as session:
                if principal.role.sees_everything:
                    device = await self._visible(session, principal, device_id)
                else:
                    device = await self._owned(session, principal, device_id)
                return await self._command(
                    session, device, command_id, type_, payload, expires_at, trade_id=None
                )
        except DomainError as exc:
            self.metrics.refused.labels(code=exc.code).inc()
            raise

    async def _command(
        self,
        session: AsyncSession,
        device: DeviceRow,
        command_id: str,
        type_: str,
        payload: dict[str, Any],
        expires_at: datetime,
        *,
        trade_id: str | None,
    ) -> DeviceCommandRow:
        now = self._clock.now()
        if type_ not in DEVICE_COMMAND_TYPES:
            raise InvalidDeviceError(
                "unknown device command type", type=type_, allowed=list(DEVICE_COMMAND_TYPES)
            )
        if expires_at <= now:
            raise StaleCommandError(
                "the command expired before it was sent", expires_at=expires_at.isoformat()
            )
        if expires_at > now + timedelta(seconds=MAX_COMMAND_TTL_S):
            raise InvalidDeviceError("a command expires within a day")
        if type_ == "schedule":
            self._check_schedule(device, payload, expires_at - now)
        if await session.get(DeviceCommandRow, command_id) is not None:
            raise DuplicateCommandError("a command with this id exists", command_id=command_id)
        if device.node_id is None:
            raise InvalidDeviceError(
                "the device has no node to carry commands", device_id=device.id
            )
        node = await session.get(NodeRow, device.node_id)
        meter = await session.get(MeterRow, device.meter_id)
        if node is None or node.status != ACTIVE or meter is None:
            raise InvalidDeviceError("the device's node is not active", node_id=device.node_id)
        carrier, values = self._command_rows(
            device, meter.zone_id, command_id, type_, payload, expires_at, trade_id, now
        )
        row = DeviceCommandRow(**values)
        session.add_all([NodeCommandRow(**carrier), row])
        return row

    @staticmethod
    def _command_rows(
        device: DeviceRow,
        zone: str,
        command_id: str,
        type_: str,
        payload: dict[str, Any],
        expires_at: datetime,
        trade_id: str | None,
        now: datetime,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A device command and the node command that carries it over the link, as the
        column values of their rows (bulk inserted by the planner)."""
        assert device.node_id is not None
        carrier_id = new_id()
        node_command = {
            "id": carrier_id,
            "node_id": device.node_id,
            "job_id": None,
            "type": CommandType.DEVICE.value,
            "payload": json.dumps(
                {
                    "zone": zone,
                    "device_id": device.id,
                    "type": type_,
                    "payload": {**payload, "command_id": command_id},
                },
                sort_keys=True,
            ),
            "state": CommandState.QUEUED.value,
            "created_by": "delivery",
            "created_at": now,
            "not_before": now,
            "expires_at": expires_at,
            "retries": 0,
            "next_attempt_at": now,
            "sent_at": None,
            "durable_at": None,
            "finished_at": None,
            "detail": None,
            "result": None,
        }
        row = {
            "id": command_id,
            "device_id": device.id,
            "trade_id": trade_id,
            "node_command_id": carrier_id,
            "type": type_,
            "payload": json.dumps(payload, sort_keys=True),
            "status": CMD_SENT,
            "issued_at": now,
            "expires_at": expires_at,
            "acked_at": None,
            "detail": None,
        }
        return node_command, row

    @staticmethod
    def _check_schedule(device: DeviceRow, payload: dict[str, Any], window: timedelta) -> None:
        power = payload.get("power_w")
        seconds = payload.get("seconds", int(window.total_seconds()))
        if not isinstance(power, int) or isinstance(power, bool):
            raise SetpointOutOfLimitsError("a schedule needs an integer power_w")
        if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
            raise SetpointOutOfLimitsError("a schedule's seconds is a positive integer")
        limits_of(device).check_setpoint(power, seconds, device.soc_wh)

    async def list_commands(
        self, principal: Principal, device_id: str, *, limit: int, offset: int
    ) -> list[DeviceCommandRow]:
        async with self._db.read() as session:
            await self._visible(session, principal, device_id)
            query = (
                select(DeviceCommandRow)
                .where(DeviceCommandRow.device_id == device_id)
                .order_by(DeviceCommandRow.issued_at.desc(), DeviceCommandRow.id)
                .limit(limit)
                .offset(offset)
            )
            return list(await session.scalars(query))

    async def sweep(self) -> int:
        """Settle sent commands from their node commands' outcome; returns how many failed.

        Applied: ``acked``. Rejected or expired, or unacked past ``expires_at``
        (a command the node holds but the device has not answered: past
        ``expires_at`` plus the start grace): ``failed``, and the device becomes
        ``at_risk`` with a ``device.alert``. A trade whose command the device
        rejected is refunded (``fault``); one still ``open`` with a command not
        acked once its epoch started plus the start grace is refunded
        (``timeout``). Set-based: one statement acks every applied command.
        """
        now = self._clock.now()
        failed: list[tuple[DeviceRow, DeviceCommandRow]] = []
        faulted: set[str] = set()
        async with self._db.write() as session:
            carrier = NodeCommandRow.id == DeviceCommandRow.node_command_id
            await session.execute(
                update(DeviceCommandRow)
                .where(
                    DeviceCommandRow.status == CMD_SENT,
                    # Each sent command's own node command, by its key: an IN over the
                    # applied ones would read every command ever applied, every round.
                    select(NodeCommandRow.id)
                    .where(carrier, NodeCommandRow.state == CommandState.APPLIED.value)
                    .exists(),
                )
                .values(
                    status=CMD_ACKED,
                    acked_at=select(NodeCommandRow.finished_at).where(carrier).scalar_subquery(),
                )
                .execution_options(synchronize_session=False)
            )
            failing = (
                await session.execute(
                    select(DeviceCommandRow, NodeCommandRow.detail, NodeCommandRow.state)
                    .outerjoin(NodeCommandRow, carrier)
                    .where(DeviceCommandRow.status == CMD_SENT)
                    .where(
                        or_(
                            NodeCommandRow.state.in_(
                                [CommandState.REJECTED.value, CommandState.EXPIRED.value]
                            ),
                            and_(
                                DeviceCommandRow.expires_at <= now,
                                or_(
                                    NodeCommandRow.state.is_(None),
                                    NodeCommandRow.state != CommandState.NODE_DURABLE.value,
                                ),
                            ),
                            DeviceCommandRow.expires_at <= now - self._start_grace,
                        )
                    )
                    .order_by(DeviceCommandRow.id)
                )
            ).all()
            for cmd, detail, node_state in failing:
                cmd.status = CMD_FAILED
                cmd.detail = (detail or "no acknowledgement before expiry")[:200]
                if cmd.trade_id is not None and node_state == CommandState.REJECTED.value:
                    faulted.add(cmd.trade_id)
                device = await session.get(DeviceRow, cmd.device_id)
                if device is not None and device.status == ACTIVE:
                    device.status = AT_RISK
                    device.updated_at = now
                if device is not None:
                    failed.append((device, cmd))
            moved = await self._refund(
                session, faulted, DeliveryEvent.FAULT, "a device refused its setpoint", now
            )
            moved += await self._advance_trades(session, now)
            moved += await self._refund(
                session,
                await self._timed_out(session, now),
                DeliveryEvent.TIMEOUT,
                "a device did not acknowledge its setpoint by the epoch's start",
                now,
            )
        for data, parties in moved:
            await self._publish_delivery_data(data, parties)
        for device, cmd in failed:
            await self._bus.publish(
                Event(
                    EventType.DEVICE_ALERT,
                    {
                        "kind": "device_at_risk",
                        "device_id": device.id,
                        "command_id": cmd.id,
                        "type": cmd.type,
                        "detail": cmd.detail,
                    },
                    audience=frozenset({device.owner_id}),
                )
            )
        return len(failed)

    async def _timed_out(self, session: AsyncSession, now: datetime) -> set[str]:
        """Trades still ``open`` (a command not acked) whose epoch started at least the
        start grace ago. Trades without commands (no node) are left to the meters."""
        started = self._schedule.epoch_id_at(now - self._start_grace)
        return set(
            await session.scalars(
                select(TradeDeliveryRow.trade_id).where(
                    TradeDeliveryRow.state == DeliveryState.OPEN.value,
                    TradeDeliveryRow.epoch_id <= started,
                    select(DeviceCommandRow.id)
                    .where(
                        DeviceCommandRow.trade_id == TradeDeliveryRow.trade_id,
                        DeviceCommandRow.status != CMD_ACKED,
                    )
                    .exists(),
                )
            )
        )

    async def _refund(
        self,
        session: AsyncSession,
        trade_ids: Iterable[str],
        event: DeliveryEvent,
        reason: str,
        now: datetime,
    ) -> list[tuple[dict[str, Any], frozenset[str]]]:
        """Move the deliveries of ``trade_ids`` that can take ``event`` to ``refunded``.

        Nothing moves money here: the epoch's batch settles them as undelivered
        (``wattx.devices.allocation.refunded_outcome``)."""
        ids = sorted(set(trade_ids))
        if not ids:
            return []
        query = (
            select(TradeDeliveryRow, TradeRow.buyer, TradeRow.seller)
            .join(TradeRow, TradeRow.id == TradeDeliveryRow.trade_id)
            .where(TradeDeliveryRow.trade_id.in_(ids))
            .where(TradeDeliveryRow.delivered_wh.is_(None))
            .order_by(TradeDeliveryRow.trade_id)
        )
        if self._db.locks_rows:
            query = query.with_for_update(of=TradeDeliveryRow)
        rows = (await session.execute(query)).all()
        moved: list[tuple[dict[str, Any], frozenset[str]]] = []
        for row, buyer, seller in rows:
            state = DeliveryState(row.state)
            if (state, event) not in TRANSITIONS:
                continue
            row.state = advance(state, event).value
            count_moves(session, [(state.value, row.state)])
            row.reason = f"{event.value}: {reason}"[:200]
            row.updated_at = now
            self.metrics.refunds.labels(event=event.value).inc()
            data = _delivery_data(row.trade_id, row.epoch_id, row.state, row.contracted_wh)
            data["reason"] = row.reason
            moved.append((data, frozenset({buyer, seller})))
        return moved

    async def cancel(self, principal: Principal, trade_id: str) -> TradeDeliveryRow:
        """The seller (or an operator) cancels a delivery not yet transferring: the trade
        is refunded and settles as undelivered (the seller pays the imbalance charge)."""
        now = self._clock.now()
        async with self._db.write() as session:
            found = (
                await session.execute(
                    select(TradeDeliveryRow, TradeRow.buyer, TradeRow.seller)
                    .join(TradeRow, TradeRow.id == TradeDeliveryRow.trade_id)
                    .where(TradeDeliveryRow.trade_id == trade_id)
                )
            ).first()
            if found is None or not (
                principal.role.sees_everything or principal.user_id in (found[1], found[2])
            ):
                raise DeliveryNotFoundError("no such delivery", trade_id=trade_id)
            row: TradeDeliveryRow = found[0]
            seller: str = found[2]
            if not principal.role.sees_everything and principal.user_id != seller:
                raise DeliveryCancelForbiddenError(
                    "only the seller or an operator cancels a delivery", trade_id=trade_id
                )
            state = DeliveryState(row.state)
            if (state, DeliveryEvent.CANCEL) not in TRANSITIONS or row.delivered_wh is not None:
                raise DeliveryTransitionError(
                    f"a delivery in state {state} cannot be cancelled",
                    trade_id=trade_id,
                    state=state.value,
                )
            who = "an operator" if principal.role.sees_everything else "the seller"
            moved = await self._refund(
                session, [trade_id], DeliveryEvent.CANCEL, f"cancelled by {who}", now
            )
            await self._stop_transfers(session, row)
        for data, parties in moved:
            await self._publish_delivery_data(data, parties)
        return row

    async def _stop_transfers(self, session: AsyncSession, row: TradeDeliveryRow) -> None:
        """Withdraw a cancelled trade's setpoints: a ``transfer.stop`` command to each
        device planned for it that sits behind an active node, expiring at the end
        of the delivery epoch."""
        planned = await session.scalars(
            select(DeviceRow)
            .where(
                DeviceRow.id.in_(
                    select(DeviceCommandRow.device_id).where(
                        DeviceCommandRow.trade_id == row.trade_id,
                        DeviceCommandRow.type == "schedule",
                    )
                )
            )
            .order_by(DeviceRow.id)
        )
        ends = self._schedule.epoch(row.epoch_id).end
        for device in list(planned):
            try:
                await self._command(
                    session,
                    device,
                    f"stop:{row.trade_id}:{device.id}"[:64],
                    "transfer.stop",
                    {"trade_id": row.trade_id},
                    ends,
                    trade_id=row.trade_id,
                )
            except InvalidDeviceError:
                continue  # no active node: nothing can reach it

    async def _advance_trades(
        self, session: AsyncSession, now: datetime
    ) -> list[tuple[dict[str, Any], frozenset[str]]]:
        """``open`` → ``funds_locked`` once every command of the trade is acked (the
        devices hold the setpoints); ``funds_locked`` → ``transferring`` once its
        delivery epoch has started. Returns the moved deliveries' event data."""
        live = (
            await session.execute(
                select(
                    TradeDeliveryRow.trade_id,
                    TradeDeliveryRow.epoch_id,
                    TradeDeliveryRow.state,
                    TradeDeliveryRow.contracted_wh,
                    TradeRow.buyer,
                    TradeRow.seller,
                )
                .join(TradeRow, TradeRow.id == TradeDeliveryRow.trade_id)
                .where(
                    TradeDeliveryRow.state.in_(
                        [DeliveryState.OPEN.value, DeliveryState.FUNDS_LOCKED.value]
                    )
                )
            )
        ).all()
        if not live:
            return []
        statuses: dict[str, set[str]] = defaultdict(set)
        for trade_id, status in await session.execute(
            select(DeviceCommandRow.trade_id, DeviceCommandRow.status).where(
                DeviceCommandRow.trade_id.in_(
                    select(TradeDeliveryRow.trade_id).where(
                        TradeDeliveryRow.state == DeliveryState.OPEN.value
                    )
                )
            )
        ):
            statuses[trade_id or ""].add(status)
        moved: list[tuple[dict[str, Any], frozenset[str]]] = []
        by_move: dict[tuple[str, DeliveryState], list[str]] = defaultdict(list)
        for trade_id, epoch_id, current, contracted, buyer, seller in live:
            state = DeliveryState(current)
            if state is DeliveryState.OPEN and statuses.get(trade_id) == {CMD_ACKED}:
                state = advance(state, DeliveryEvent.LOCK_ACKED)
            if state is DeliveryState.FUNDS_LOCKED and now >= self._schedule.epoch(epoch_id).start:
                state = advance(state, DeliveryEvent.TRANSFER_STARTED)
            if state.value != current:
                by_move[(current, state)].append(trade_id)
                moved.append(
                    (
                        _delivery_data(trade_id, epoch_id, state.value, contracted),
                        frozenset({buyer, seller}),
                    )
                )
        for (current, state), ids in by_move.items():
            for chunk in chunks(ids, 500):
                # Only those still in the state read above (on PostgreSQL another
                # transaction may have refunded one since): the counts follow what moved.
                result: CursorResult[Any] = await session.execute(  # type: ignore[assignment]
                    update(TradeDeliveryRow)
                    .where(TradeDeliveryRow.trade_id.in_(chunk))
                    .where(TradeDeliveryRow.state == current)
                    .values(state=state.value, updated_at=now)
                    .execution_options(synchronize_session=False)
                )
                count_moves(session, [(current, state.value)] * result.rowcount)
        return moved

    async def device_answers_recorded(self) -> int:
        """How many device commands have the device's answer (applied or rejected) on
        their node command: a caller that drives a node can wait for its acks to land."""
        async with self._db.read() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(DeviceCommandRow)
                .join(NodeCommandRow, NodeCommandRow.id == DeviceCommandRow.node_command_id)
                .where(
                    NodeCommandRow.state.in_(
                        [CommandState.APPLIED.value, CommandState.REJECTED.value]
                    )
                )
            )
        return int(count or 0)

    async def at_risk(self, *, limit: int, offset: int) -> list[DeviceRow]:
        async with self._db.read() as session:
            query = (
                select(DeviceRow)
                .where(DeviceRow.status == AT_RISK)
                .order_by(DeviceRow.updated_at, DeviceRow.id)
                .limit(limit)
                .offset(offset)
            )
            return list(await session.scalars(query))

    # -- day-ahead schedule -----------------------------------------------------

    async def set_schedule(
        self,
        principal: Principal,
        device_id: str,
        *,
        starts_at: datetime,
        forecast: Forecast,
        final_soc_min_wh: int | None,
    ) -> Schedule:
        """Solve a battery's day-ahead schedule from its owner's forecast and keep it:
        the delivery plans of the epochs it covers ask no more of the battery than
        the schedule's discharge and charge (``wattx.devices.plans.scheduled_budget``)."""
        async with self._db.read() as session:
            device = await self._owned(session, principal, device_id)
        if device.kind != DeviceKind.BATTERY.value or device.soc_wh is None:
            raise InvalidScheduleError(
                "a day-ahead schedule is for a battery whose state of charge is known",
                device_id=device_id,
            )
        spec = BatterySpec(device.capacity_wh, device.reserve_wh, device.rated_power_w)
        try:
            schedule = await asyncio.to_thread(
                schedule_day_ahead,
                forecast,
                spec,
                max(device.soc_wh, device.reserve_wh),
                final_soc_min_wh=final_soc_min_wh,
            )
        except ScheduleInputError as exc:
            raise InvalidScheduleError(str(exc), device_id=device_id) from None
        stored = json.dumps(
            {
                "starts_at": starts_at.isoformat(),
                "slot_s": forecast.slot_s,
                "slots": [[s.charge_wh, s.discharge_wh, s.soc_wh] for s in schedule.slots],
            }
        )
        async with self._db.write() as session:
            row = await self._owned(session, principal, device_id)
            row.schedule = stored
            row.updated_at = self._clock.now()
        return schedule

    def _budget(self, device: DeviceRow, epoch_start: datetime, seconds: int) -> Budget | None:
        if device.schedule is None:
            return None
        doc = json.loads(device.schedule)
        return scheduled_budget(
            datetime.fromisoformat(doc["starts_at"]),
            int(doc["slot_s"]),
            [ScheduledSlot(c, d, soc) for c, d, soc in doc["slots"]],
            epoch_start,
            seconds,
        )

    # -- telemetry --------------------------------------------------------------

    async def telemetry(
        self,
        principal: Principal,
        device_id: str,
        *,
        epoch_id: int,
        export_wh: int | None,
        import_wh: int | None,
        fault: str | None,
    ) -> list[str]:
        """A device's report for one delivery epoch: its energy, and whether it tripped.

        Energy is checked against the device's meter's verified energy for the
        epoch: beyond the tolerance the report is refused
        (:class:`TelemetryContradictsMeterError`), a ``device.alert`` goes to the
        owner and operators see it in the counters; the meter wins, nothing
        changes. A fault puts the device ``at_risk`` and refunds (``fault``) the
        trades of that epoch planned onto it (a device without a node: its
        owner's trades of the epoch on the side the device serves). Returns the
        refunded trade ids.
        """
        now = self._clock.now()
        try:
            async with self._db.write() as session:
                device = await self._owned(session, principal, device_id)
                if export_wh is not None or import_wh is not None:
                    await self._check_against_meter(session, device, epoch_id, export_wh, import_wh)
                moved: list[tuple[dict[str, Any], frozenset[str]]] = []
                if fault is not None:
                    device.status = AT_RISK
                    device.updated_at = now
                    moved = await self._refund(
                        session,
                        await self._trades_on(session, device, epoch_id),
                        DeliveryEvent.FAULT,
                        f"device {device.id} reported {fault}",
                        now,
                    )
        except TelemetryContradictsMeterError as exc:
            self.metrics.refused.labels(code=exc.code).inc()
            await self._bus.publish(
                Event(
                    EventType.DEVICE_ALERT,
                    {"kind": "telemetry_contradicts_meter", "device_id": device_id, **exc.context},
                    audience=frozenset({principal.user_id}),
                )
            )
            raise
        except DomainError as exc:
            self.metrics.refused.labels(code=exc.code).inc()
            raise
        if fault is not None:
            await self._publish_device(device)
            await self._bus.publish(
                Event(
                    EventType.DEVICE_ALERT,
                    {
                        "kind": "device_fault",
                        "device_id": device.id,
                        "epoch_id": epoch_id,
                        "detail": fault,
                        "refunded": sorted(d["trade_id"] for d, _ in moved),
                    },
                    audience=frozenset({device.owner_id}),
                )
            )
        for data, parties in moved:
            await self._publish_delivery_data(data, parties)
        return sorted(d["trade_id"] for d, _ in moved)

    async def _check_against_meter(
        self,
        session: AsyncSession,
        device: DeviceRow,
        epoch_id: int,
        export_wh: int | None,
        import_wh: int | None,
    ) -> None:
        energy = await session.get(MeterEpochEnergyRow, (device.meter_id, epoch_id))
        if energy is None:
            raise MeterEpochPendingError(
                "the meter has no verified energy for this epoch yet; report after it",
                meter_id=device.meter_id,
                epoch_id=epoch_id,
            )
        for direction, reported, metered in (
            ("export", export_wh, energy.verified_export_wh),
            ("import", import_wh, energy.import_wh),
        ):
            if reported is None:
                continue
            allowed = max(self._tolerance_wh, metered * self._tolerance_pct // 100)
            if abs(reported - metered) > allowed:
                self.metrics.contradictions_wh.labels(direction=direction).inc(
                    abs(reported - metered) - allowed
                )
                raise TelemetryContradictsMeterError(
                    f"the device reports {reported} Wh {direction}, its meter verified "
                    f"{metered} Wh (tolerance {allowed} Wh); the meter counts",
                    epoch_id=epoch_id,
                    direction=direction,
                    reported_wh=reported,
                    metered_wh=metered,
                    tolerance_wh=allowed,
                )

    async def _trades_on(self, session: AsyncSession, device: DeviceRow, epoch_id: int) -> set[str]:
        """The trades of ``epoch_id`` planned onto ``device``."""
        planned = set(
            await session.scalars(
                select(DeviceCommandRow.trade_id)
                .join(TradeDeliveryRow, TradeDeliveryRow.trade_id == DeviceCommandRow.trade_id)
                .where(DeviceCommandRow.device_id == device.id)
                .where(TradeDeliveryRow.epoch_id == epoch_id)
            )
        )
        if device.node_id is not None:
            return {t for t in planned if t is not None}
        limits = limits_of(device)
        sides = []
        if limits.can_supply:
            sides.append(TradeRow.seller == device.owner_id)
        if limits.can_take:
            sides.append(TradeRow.buyer == device.owner_id)
        return set(
            await session.scalars(
                select(TradeDeliveryRow.trade_id)
                .join(TradeRow, TradeRow.id == TradeDeliveryRow.trade_id)
                .where(TradeDeliveryRow.epoch_id == epoch_id)
                .where(or_(*sides))
            )
        )

    # -- plans ------------------------------------------------------------------

    async def plan_due(self) -> dict[str, DeliveryPlan]:
        """Delivery rows, plans and ``schedule`` commands for closed epochs not started yet."""
        now = self._clock.now()
        current = self._schedule.epoch_id_at(now)
        plans: dict[str, DeliveryPlan] = {}
        opened: list[dict[str, Any]] = []
        parties: dict[str, frozenset[str]] = {}
        async with self._db.write() as session:
            epochs = list(
                await session.scalars(
                    select(EpochRow.id)
                    .where(EpochRow.id > current)
                    .where(
                        select(TradeRow.id)
                        .outerjoin(TradeDeliveryRow, TradeDeliveryRow.trade_id == TradeRow.id)
                        .where(TradeRow.epoch_id == EpochRow.id)
                        .where(TradeDeliveryRow.trade_id.is_(None))
                        .exists()
                    )
                    .order_by(EpochRow.id)
                )
            )
            for epoch_id in epochs:
                trades = [
                    trade_from_row(r)
                    for r in await session.scalars(
                        select(TradeRow).where(TradeRow.epoch_id == epoch_id)
                    )
                ]
                known = set(
                    await session.scalars(
                        select(TradeDeliveryRow.trade_id).where(
                            TradeDeliveryRow.epoch_id == epoch_id
                        )
                    )
                )
                devices = await self._devices_of(
                    session, {t.seller for t in trades} | {t.buyer for t in trades}
                )
                physical = [t for t in _physical(trades, devices) if t.id not in known]
                epoch = self._schedule.epoch(epoch_id)
                seconds = self._schedule.length_s
                planned = [
                    PlannedDevice(d.id, d.owner_id, limits_of(d), d.soc_wh)
                    for own in devices.values()
                    for d in own
                ]
                budgets = {
                    d.id: budget
                    for own in devices.values()
                    for d in own
                    if (budget := self._budget(d, epoch.start, seconds)) is not None
                }
                epoch_plans = build_plans(physical, planned, seconds, budgets)
                by_id = {d.id: d for own in devices.values() for d in own}
                zone_of = await self._zones_of_meters(session, {d.meter_id for d in by_id.values()})
                live_nodes = await self._active_nodes(
                    session, {d.node_id for d in by_id.values() if d.node_id is not None}
                )
                deliveries: list[dict[str, Any]] = []
                carriers: list[dict[str, Any]] = []
                device_commands: list[dict[str, Any]] = []
                for trade in physical:
                    row = {
                        "trade_id": trade.id,
                        "epoch_id": epoch_id,
                        "buyer": trade.buyer,
                        "seller": trade.seller,
                        "trade_seq": trade.seq,
                        "state": DeliveryState.OPEN.value,
                        "contracted_wh": trade.delivered_wh,
                        "delivered_wh": None,
                        "refund": None,
                        "imbalance_charge": None,
                        "seller_export_wh": None,
                        "buyer_import_wh": None,
                        "reason": None,
                        "updated_at": now,
                    }
                    deliveries.append(row)
                    opened.append(row)
                    parties[trade.id] = frozenset({trade.buyer, trade.seller})
                    plan = epoch_plans[trade.id]
                    plans[trade.id] = plan
                    for setpoint in (*plan.supply, *plan.take):
                        device = by_id[setpoint.device_id]
                        if device.node_id not in live_nodes or device.meter_id not in zone_of:
                            continue
                        carrier, values = self._command_rows(
                            device,
                            zone_of[device.meter_id],
                            f"{trade.id}:{device.id}:schedule"[:64],
                            "schedule",
                            {
                                "trade_id": trade.id,
                                "epoch_id": epoch_id,
                                "starts_at": epoch.start.isoformat(),
                                "seconds": seconds,
                                "power_w": setpoint.power_w,
                                "energy_wh": setpoint.energy_wh,
                            },
                            epoch.start,
                            trade.id,
                            now,
                        )
                        carriers.append(carrier)
                        device_commands.append(values)
                # Bulk inserts: thousands of rows without building ORM objects.
                count_moves(session, [(None, values["state"]) for values in deliveries])
                for model, values_list in (
                    (TradeDeliveryRow, deliveries),
                    (NodeCommandRow, carriers),
                    (DeviceCommandRow, device_commands),
                ):
                    if values_list:
                        await session.execute(insert(model), values_list)
        for data in opened:
            await self._publish_delivery_data(
                _delivery_data(
                    data["trade_id"], data["epoch_id"], data["state"], data["contracted_wh"]
                ),
                parties[data["trade_id"]],
            )
        return plans

    @staticmethod
    async def _zones_of_meters(session: AsyncSession, meter_ids: Iterable[str]) -> dict[str, str]:
        ids = sorted(set(meter_ids))
        out: dict[str, str] = {}
        for start in range(0, len(ids), 500):
            rows = await session.execute(
                select(MeterRow.id, MeterRow.zone_id).where(
                    MeterRow.id.in_(ids[start : start + 500])
                )
            )
            out.update((m, z) for m, z in rows.all())
        return out

    @staticmethod
    async def _active_nodes(session: AsyncSession, node_ids: Iterable[str]) -> set[str]:
        ids = sorted(set(node_ids))
        out: set[str] = set()
        for start in range(0, len(ids), 500):
            out.update(
                await session.scalars(
                    select(NodeRow.id).where(
                        NodeRow.id.in_(ids[start : start + 500]), NodeRow.status == ACTIVE
                    )
                )
            )
        return out

    async def _devices_of(
        self, session: AsyncSession, parties: Iterable[str]
    ) -> dict[str, list[DeviceRow]]:
        out: dict[str, list[DeviceRow]] = defaultdict(list)
        names = sorted(set(parties))
        for start in range(0, len(names), 500):
            rows = await session.scalars(
                select(DeviceRow)
                .where(DeviceRow.owner_id.in_(names[start : start + 500]))
                .where(DeviceRow.status != REMOVED)
                .order_by(DeviceRow.id)
            )
            for row in rows:
                out[row.owner_id].append(row)
        return out

    # -- measured delivery ------------------------------------------------------

    async def check_ready(self, epoch_id: int) -> None:
        """Raise :class:`DeliveryGracePendingError` while the epoch's physical trades
        wait for late readings."""
        ready_at = self._schedule.epoch(epoch_id).end + self._grace
        if self._clock.now() >= ready_at:
            return
        async with self._db.read() as session:
            trades = [
                trade_from_row(r)
                for r in await session.scalars(
                    select(TradeRow).where(TradeRow.epoch_id == epoch_id)
                )
            ]
            devices = await self._devices_of(
                session, {t.seller for t in trades} | {t.buyer for t in trades}
            )
        if _physical(trades, devices):
            raise DeliveryGracePendingError(
                f"epoch {epoch_id}'s physical trades settle from {ready_at.isoformat()}",
                epoch_id=epoch_id,
                ready_at=ready_at.isoformat(),
            )

    async def measure(self, epoch_id: int, trades: Sequence[Trade]) -> dict[str, DeliveryOutcome]:
        """What the meters proved for the epoch's physical trades (reads only).

        Trades refunded before measurement (cancel, timeout, fault) settle as
        undelivered and take no share of the metered energy; every seller's
        refunds and charges are capped at its free credit (``cap_to_credit``)."""
        async with self._db.read() as session:
            devices = await self._devices_of(
                session, {t.seller for t in trades} | {t.buyer for t in trades}
            )
            refunded = set(
                await session.scalars(
                    select(TradeDeliveryRow.trade_id).where(
                        TradeDeliveryRow.epoch_id == epoch_id,
                        TradeDeliveryRow.state == DeliveryState.REFUNDED.value,
                        TradeDeliveryRow.delivered_wh.is_(None),
                    )
                )
            )
            early = [t for t in trades if t.id in refunded]
            physical = [t for t in _physical(trades, devices) if t.id not in refunded]
            if not physical and not early:
                return {}
            meters_of = {owner: sorted({d.meter_id for d in own}) for owner, own in devices.items()}
            all_meters = sorted({m for ms in meters_of.values() for m in ms})
            energy = {
                r.meter_id: r
                for r in await session.scalars(
                    select(MeterEpochEnergyRow).where(
                        MeterEpochEnergyRow.epoch_id == epoch_id,
                        MeterEpochEnergyRow.meter_id.in_(all_meters),
                    )
                )
            }
            zones = {
                z.id: z
                for z in await session.scalars(
                    select(ZoneRow).where(
                        ZoneRow.id.in_({t.seller_zone for t in (*physical, *early)})
                    )
                )
            }
            sellers = sorted({t.seller for t in (*physical, *early)})
            credit: dict[str, int] = {
                r.account_id: r.free
                for r in await session.execute(
                    select(BalanceRow.account_id, BalanceRow.free).where(
                        BalanceRow.asset == Asset.CREDIT.value,
                        BalanceRow.account_id.in_(sellers),
                    )
                )
            }
        export = {
            owner: sum(energy[m].verified_export_wh for m in ms if m in energy)
            for owner, ms in meters_of.items()
        }
        imported = {
            owner: sum(energy[m].import_wh for m in ms if m in energy)
            for owner, ms in meters_of.items()
        }
        hour = self._schedule.epoch(epoch_id).start.hour
        prices = {
            zone_id: Tariff(
                tuple(TimeOfUseBand(h, f, r) for h, f, r in json.loads(row.tariff_bands))
            )
            .band_at(hour)
            .retail
            for zone_id, row in zones.items()
        }
        outcomes = reconcile(physical, export, imported, prices)
        for trade in early:
            outcomes[trade.id] = refunded_outcome(trade, prices.get(trade.seller_zone, 0))
        return cap_to_credit([*physical, *early], outcomes, credit)

    async def record(
        self,
        session: AsyncSession,
        epoch_id: int,
        trades: Sequence[Trade],
        outcomes: Mapping[str, DeliveryOutcome],
    ) -> list[TradeDeliveryRow]:
        """Store the outcomes and move the off-chain balances (inside the caller's
        transaction, the one writing the outbox row)."""
        now = self._clock.now()
        rows = {
            r.trade_id: r
            for r in await session.scalars(
                select(TradeDeliveryRow).where(TradeDeliveryRow.epoch_id == epoch_id)
            )
        }
        lock = self._db.locks_rows
        moving = [
            outcomes[t.id]
            for t in trades
            if t.id in outcomes and (outcomes[t.id].undelivered_wh or outcomes[t.id].refund)
        ]
        if moving:
            parties = {t.buyer for t in trades if t.id in outcomes} | {
                t.seller for t in trades if t.id in outcomes
            }
            await lock_balances(
                session,
                [(FEE_ACCOUNT, Asset.CREDIT)]
                + [(p, a) for p in sorted(parties) for a in (Asset.CREDIT, Asset.ENERGY)],
                lock=lock,
            )
        changed: list[TradeDeliveryRow] = []
        entries: list[dict[str, Any]] = []
        # What this measurement adds to each seller's running totals (the reference
        # price's reliability): a delivery measured again adds only its change.
        measured: dict[tuple[str, str], DeliveryRecord] = {}

        def journal_entry(
            account: str, asset: str, amount: int, *, kind: str, at: datetime, ref: str
        ) -> None:
            if amount:
                entries.append(
                    {
                        "account_id": account,
                        "asset": asset,
                        "amount": amount,
                        "kind": kind,
                        "ref": ref,
                        "at": at,
                    }
                )

        for trade in sorted(trades, key=lambda t: (t.seq, t.id)):
            outcome = outcomes.get(trade.id)
            if outcome is None:
                continue
            row = rows.get(trade.id)
            before = None if row is None else row.state
            if row is None:
                row = TradeDeliveryRow(
                    trade_id=trade.id,
                    epoch_id=epoch_id,
                    buyer=trade.buyer,
                    seller=trade.seller,
                    trade_seq=trade.seq,
                    state=DeliveryState.OPEN.value,
                    contracted_wh=trade.delivered_wh,
                    reason=None,
                    updated_at=now,
                )
                session.add(row)
            event = (
                DeliveryEvent.MEASURED if outcome.delivered_wh else DeliveryEvent.MEASURED_NOTHING
            )
            state = DeliveryState(row.state)
            # Cancelled or faulted before measurement: the meters still decide
            # what the batch settles; the state stays refunded.
            if state is not DeliveryState.REFUNDED:
                row.state = advance(state, event).value
            count_moves(session, [(before, row.state)])
            first = row.delivered_wh is None
            key = (trade.seller, trade.seller_zone)
            total = measured.get(key, DeliveryRecord(0, 0, 0))
            measured[key] = DeliveryRecord(
                total.trades + (1 if first else 0),
                total.delivered_wh + outcome.delivered_wh - (row.delivered_wh or 0),
                total.contracted_wh + (row.contracted_wh if first else 0),
            )
            row.delivered_wh = outcome.delivered_wh
            row.refund = outcome.refund
            row.imbalance_charge = outcome.imbalance_charge
            row.seller_export_wh = outcome.seller_export_wh
            row.buyer_import_wh = outcome.buyer_import_wh
            if outcome.shortfall:
                row.reason = (
                    f"{row.reason + '; ' if row.reason else ''}the seller's credit fell "
                    f"{outcome.shortfall} micro-units short of the refund and charge"
                )[:200]
            row.updated_at = now
            changed.append(row)
            undelivered = outcome.undelivered_wh
            if undelivered:
                buyer_energy = await balance_for_update(
                    session, trade.buyer, Asset.ENERGY, lock=lock
                )
                buyer_energy.free -= undelivered
                seller_energy = await balance_for_update(
                    session, trade.seller, Asset.ENERGY, lock=lock
                )
                seller_energy.free += undelivered
                energy = Asset.ENERGY.value
                journal_entry(
                    trade.buyer,
                    energy,
                    -undelivered,
                    kind="undelivered",
                    at=now,
                    ref=trade.id,
                )
                journal_entry(
                    trade.seller,
                    energy,
                    undelivered,
                    kind="undelivered",
                    at=now,
                    ref=trade.id,
                )
            if outcome.refund or outcome.imbalance_charge:
                buyer_credit = await balance_for_update(
                    session, trade.buyer, Asset.CREDIT, lock=lock
                )
                buyer_credit.free += outcome.refund
                seller_credit = await balance_for_update(
                    session, trade.seller, Asset.CREDIT, lock=lock
                )
                seller_credit.free -= outcome.refund + outcome.imbalance_charge
                if seller_credit.free < 0:
                    # The seller spent credit after the epoch was measured: roll
                    # back; the worker measures (and caps) again.
                    raise DeliveryBalanceShortError(
                        "the seller's credit no longer covers the refund and charge",
                        trade_id=trade.id,
                    )
                fees = await balance_for_update(session, FEE_ACCOUNT, Asset.CREDIT, lock=lock)
                fees.free += outcome.imbalance_charge
                credit = Asset.CREDIT.value
                journal_entry(
                    trade.buyer,
                    credit,
                    outcome.refund,
                    kind="delivery_refund",
                    at=now,
                    ref=trade.id,
                )
                journal_entry(
                    trade.seller,
                    credit,
                    -outcome.refund,
                    kind="delivery_refund",
                    at=now,
                    ref=trade.id,
                )
                journal_entry(
                    trade.seller,
                    credit,
                    -outcome.imbalance_charge,
                    kind="imbalance_charge",
                    at=now,
                    ref=trade.id,
                )
                journal_entry(
                    FEE_ACCOUNT,
                    credit,
                    outcome.imbalance_charge,
                    kind="imbalance_charge",
                    at=now,
                    ref=trade.id,
                )
        await add_measured_deliveries(session, measured)
        if entries:
            # One executemany instead of thousands of ORM objects.
            await session.execute(insert(LedgerEntryRow), entries)
        return changed

    async def stored(self, session: AsyncSession, epoch_id: int) -> dict[str, MeasuredDelivery]:
        """The measured outcomes the epoch's batch was written with."""
        rows = await session.scalars(
            select(TradeDeliveryRow).where(
                TradeDeliveryRow.epoch_id == epoch_id,
                TradeDeliveryRow.delivered_wh.is_not(None),
            )
        )
        return {
            r.trade_id: MeasuredDelivery(
                delivered_wh=r.delivered_wh or 0,
                refund=r.refund or 0,
                imbalance_charge=r.imbalance_charge or 0,
            )
            for r in rows
        }

    async def mark_settled(self, session: AsyncSession, epoch_id: int) -> list[TradeDeliveryRow]:
        rows = list(
            await session.scalars(
                select(TradeDeliveryRow).where(
                    TradeDeliveryRow.epoch_id == epoch_id,
                    TradeDeliveryRow.state == DeliveryState.DELIVERED.value,
                )
            )
        )
        now = self._clock.now()
        for row in rows:
            before = row.state
            row.state = advance(DeliveryState(row.state), DeliveryEvent.SETTLED).value
            row.updated_at = now
            count_moves(session, [(before, row.state)])
        return rows

    async def publish(
        self, rows: Iterable[TradeDeliveryRow], parties: Mapping[str, frozenset[str]]
    ) -> None:
        for row in rows:
            await self._publish_delivery(row, parties.get(row.trade_id, frozenset()))

    # -- queries ----------------------------------------------------------------

    async def deliveries(
        self,
        principal: Principal,
        *,
        epoch_id: int | None,
        limit: int,
        offset: int,
        trade_id: str | None = None,
        state: str | None = None,
        newest_first: bool = False,
    ) -> list[tuple[TradeDeliveryRow, TradeRow]]:
        """Physical trades' delivery with their trade, the caller's own unless they see
        everything; by epoch, trade or delivery state; oldest first unless ``newest_first``."""
        filters = []
        if epoch_id is not None:
            filters.append(TradeDeliveryRow.epoch_id == epoch_id)
        if trade_id is not None:
            filters.append(TradeDeliveryRow.trade_id == trade_id)
        if state is not None:
            filters.append(TradeDeliveryRow.state == state)
        query = (
            select(TradeDeliveryRow, TradeRow)
            .join(TradeRow, TradeRow.id == TradeDeliveryRow.trade_id)
            .where(*filters)
        )
        if not principal.role.sees_everything:
            # The page among the party's first limit + offset deliveries as buyer and as
            # seller, each read down its own (party, trade seq) index of the deliveries:
            # `buyer = ? OR seller = ?` on the trades went through every trade ever made.
            in_order = TradeDeliveryRow.trade_seq
            sides = [
                select(TradeDeliveryRow.trade_id)
                .where(side == principal.user_id, *filters)
                .order_by(in_order.desc() if newest_first else in_order)
                .limit(limit + offset)
                .subquery()
                for side in (TradeDeliveryRow.buyer, TradeDeliveryRow.seller)
            ]
            candidates = union_all(*(select(side.c.trade_id) for side in sides))
            query = query.where(TradeDeliveryRow.trade_id.in_(candidates))
        order = TradeRow.seq.desc() if newest_first else TradeRow.seq
        query = query.order_by(order).limit(limit).offset(offset)
        async with self._db.read() as session:
            return [(d, t) for d, t in (await session.execute(query)).all()]

    async def summary(self) -> dict[str, int]:
        """How many deliveries are in each state: a row per state, kept as deliveries are
        made and move (:mod:`wattx.store.delivery_states`), not a count of them all."""
        async with self._db.read() as session:
            return await state_counts(session)

    # -- events -----------------------------------------------------------------

    async def _publish_device(self, row: DeviceRow) -> None:
        await self._bus.publish(
            Event(
                EventType.DEVICE_STATE,
                {"device_id": row.id, "kind": row.kind, "status": row.status},
                audience=frozenset({row.owner_id}),
            )
        )

    async def _publish_delivery(self, row: TradeDeliveryRow, parties: frozenset[str]) -> None:
        data = _delivery_data(row.trade_id, row.epoch_id, row.state, row.contracted_wh)
        data.update(
            delivered_wh=row.delivered_wh, refund=row.refund, imbalance_charge=row.imbalance_charge
        )
        await self._publish_delivery_data(data, parties)

    async def _publish_delivery_data(self, data: dict[str, Any], parties: frozenset[str]) -> None:
        await self._bus.publish(Event(EventType.DELIVERY_STATE, data, audience=parties))


def _delivery_data(trade_id: str, epoch_id: int, state: str, contracted_wh: int) -> dict[str, Any]:
    return {
        "trade_id": trade_id,
        "epoch_id": epoch_id,
        "state": state,
        "contracted_wh": contracted_wh,
        "delivered_wh": None,
        "refund": None,
        "imbalance_charge": None,
    }


def _physical(trades: Sequence[Trade], devices: Mapping[str, Sequence[DeviceRow]]) -> list[Trade]:
    """The trades whose seller and buyer both have a registered device."""
    return [t for t in trades if devices.get(t.seller) and devices.get(t.buyer)]
