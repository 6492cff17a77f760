"""Edge nodes in the live service: enrolment, the registry, durable commands, the link's
use cases (authentication, heartbeats, acks, relayed readings) and health.

Every change an operator or a node makes is written to the audit chain in the
same transaction; refused attempts (a spent token, a wrong signature, a revoked
node) are audited on their own and change nothing else. Channels on the bus
(``wattx:nodes:{id}:commands``) carry nudges and link control between API
processes; the rows are the truth, so a lost message only delays.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import ColumnElement, Table, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from wattx.bus.events import Event, EventType
from wattx.bus.port import EventBus
from wattx.domain.epochs import EpochClock
from wattx.domain.errors import DomainError
from wattx.domain.ids import new_id
from wattx.incentives import PeriodClock, heartbeat_slot
from wattx.metering.errors import BadSignatureError
from wattx.nodes import challenge, registration
from wattx.nodes.commands import (
    DEFAULT_TTL_S,
    MAX_DELAY_S,
    MAX_TTL_S,
    CommandState,
    CommandType,
    can_move,
    check_command,
    retry_delay_s,
    with_lease,
)
from wattx.nodes.desired import check_config
from wattx.nodes.errors import (
    CommandNotFoundError,
    InvalidCommandError,
    JobNotFoundError,
    MeterAttachedElsewhereError,
    MeterNotBehindNodeError,
    NodeAuthenticationError,
    NodeKeyTakenError,
    NodeNotFoundError,
    NodeOwnerInvalidError,
    NodeRevokedError,
    RegistrationTokenInvalidError,
)
from wattx.nodes.frames import (
    AckFrame,
    HeartbeatFrame,
    commands_channel,
    events_channel,
    heartbeat_channel,
)
from wattx.nodes.health import (
    OFFLINE_AFTER_MISSED,
    UNHEALTHY_AFTER_MISSED,
    NodeHealth,
    node_health,
)
from wattx.services.errors import MeterNotFoundError
from wattx.services.measurement.metering import IngestResult, MeteringService
from wattx.services.measurement.meters import parse_ed25519_public_key
from wattx.services.periodic import PeriodicTask
from wattx.services.principal import Principal, Role, UserStatus
from wattx.store import accounts as account_repo
from wattx.store import audit
from wattx.store import incentives as incentives_repo
from wattx.store import meters as meter_repo
from wattx.store.db import Database
from wattx.store.models_incentives import NodeActivityRow
from wattx.store.models_nodes import (
    NodeCommandRow,
    NodeKeyRow,
    NodeMeterRow,
    NodeRegistrationTokenRow,
    NodeRow,
)

_log = logging.getLogger(__name__)

MAX_JOB_NODES = 1000
# Heartbeats written per transaction by one flush (and links checked, closed per group).
HEARTBEAT_CHUNK = 1000
# A round's heartbeats, one Core executemany by primary key: the ORM's bulk update by
# primary key did the same in about twice the CPU (a heartbeat round every second).
_NODES = cast(Table, NodeRow.__table__)
_HEARTBEAT_UPDATE = update(_NODES).where(_NODES.c.id == bindparam("node"))

# Commands taken for one node at once (the rest wait for the next take).
LINK_BATCH = 100

ACTIVE = "active"
REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks, and from where (the audit's *who* and *from where*)."""

    actor: str
    source: str

    @classmethod
    def of(cls, principal: Principal, source: str) -> Caller:
        return cls(f"user:{principal.user_id}", source)


@dataclass(frozen=True, slots=True)
class NodeView:
    row: NodeRow
    health: NodeHealth
    meter_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NodeStats:
    node_id: str
    health: NodeHealth
    linked: bool
    uptime_s: int | None
    last_heartbeat_at: datetime | None
    buffer_depth: int | None
    queue_depth: int
    readings_relayed: int
    batches_rejected: int
    foreign_batches: int
    frames_rejected: int
    commands_applied: int
    commands_failed: int


@dataclass(frozen=True, slots=True)
class LinkGrant:
    """A link the service accepted: the node, the key it proved, the link's id."""

    node_id: str
    public_key: str
    link_id: str
    heartbeat_interval_s: int
    owner_id: str


@dataclass(frozen=True, slots=True)
class _PendingHeartbeat:
    owner_id: str
    frame: HeartbeatFrame
    at: datetime
    interval_s: int
    slots: frozenset[tuple[int, int]]
    """(incentive period, heartbeat interval of that period) of every heartbeat taken."""

    def after(self, older: _PendingHeartbeat | None) -> _PendingHeartbeat:
        """This heartbeat, counting the intervals the older waiting one covered too."""
        if older is None:
            return self
        return replace(self, slots=self.slots | older.slots)


@dataclass(frozen=True, slots=True)
class RelayOutcome:
    index: int
    result: IngestResult | None
    error: DomainError | None


class NodeService:
    def __init__(
        self,
        db: Database,
        bus: EventBus,
        clock: EpochClock,
        metering: MeteringService,
        *,
        heartbeat_interval_s: int = 30,
        command_retry_base_s: float = 5.0,
        incentive_period_s: int = 86_400,
    ) -> None:
        self._db = db
        self._bus = bus
        self._clock = clock
        self._metering = metering
        self.heartbeat_interval_s = heartbeat_interval_s
        self._retry_base_s = command_retry_base_s
        self._pending_heartbeats: dict[str, _PendingHeartbeat] = {}
        self._pending_links: list[_PendingLink] = []
        self._link_writer: asyncio.Task[None] | None = None
        self._pending_sent: dict[str, datetime] = {}
        self._due_at_link: dict[str, list[dict[str, Any]]] = {}
        self._pending_closes: list[tuple[str, str, asyncio.Future[None]]] = []
        self._pending_acks: list[_PendingAck] = []
        self._ack_writer: asyncio.Task[None] | None = None
        self._close_writer: asyncio.Task[None] | None = None
        self.periods = PeriodClock(incentive_period_s)

    # ------------------------------------------------------------------ enrolment

    async def create_registration_token(
        self, principal: Principal, *, owner_id: str, name: str, ttl_s: int, source: str
    ) -> tuple[str, NodeRegistrationTokenRow]:
        """A one-time token for a node of ``owner_id`` (an admitted node operator).

        The token is returned once; only its hash is kept."""
        registration.check_lifetime(ttl_s)
        token = registration.new_registration_token()
        now = self._clock.now()
        async with self._db.write() as session:
            owner = await account_repo.user_by_id(session, owner_id)
            if (
                owner is None
                or owner.role != Role.NODE_OPERATOR.value
                or owner.status != UserStatus.ADMITTED.value
            ):
                raise NodeOwnerInvalidError(
                    "the owner must be an admitted node operator", owner_id=owner_id
                )
            row = NodeRegistrationTokenRow(
                token_hash=registration.token_hash(token),
                owner_id=owner_id,
                node_name=name,
                created_by=principal.user_id,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl_s),
                used_at=None,
                node_id=None,
            )
            session.add(row)
            await self._audit(
                session,
                Caller.of(principal, source),
                "node.registration_token.created",
                f"token:{row.token_hash[:16]}",
                after={"owner_id": owner_id, "name": name, "expires_at": row.expires_at},
            )
        return token, row

    async def enrol(self, token: str, public_key: str, *, source: str) -> NodeRow:
        """Spend a registration token: a new node bound to ``public_key``."""
        key = parse_ed25519_public_key(public_key).hex()
        caller = Caller("anonymous", source)
        if not registration.is_well_formed(token):
            await self._refused(caller, "node.enrol.refused", "token:malformed", "malformed token")
            raise RegistrationTokenInvalidError("no such registration token")
        digest = registration.token_hash(token)
        try:
            async with self._db.write() as session:
                row = await session.get(
                    NodeRegistrationTokenRow, digest, with_for_update=self._db.locks_rows
                )
                if row is None:
                    raise RegistrationTokenInvalidError("no such registration token")
                now = self._clock.now()
                registration.check_redeemable(
                    expires_at=row.expires_at, used_at=row.used_at, now=now
                )
                if await session.get(NodeKeyRow, key) is not None:
                    raise NodeKeyTakenError("this public key already belongs to a node")
                node = NodeRow(
                    id=new_id(),
                    name=row.node_name,
                    owner_id=row.owner_id,
                    status=ACTIVE,
                    health=NodeHealth.PENDING.value,
                    created_at=now,
                    revoked_at=None,
                    heartbeat_interval_s=self.heartbeat_interval_s,
                    last_heartbeat_at=None,
                    linked_at=None,
                    link_id=None,
                    uptime_s=None,
                    software_version=None,
                    buffer_depth=None,
                    device_summary="{}",
                    readings_relayed=0,
                    batches_rejected=0,
                    foreign_batches=0,
                    frames_rejected=0,
                    commands_applied=0,
                    commands_failed=0,
                )
                session.add(node)
                session.add(NodeKeyRow(public_key=key, node_id=node.id, created_at=now))
                row.used_at = now
                row.node_id = node.id
                await self._audit(
                    session,
                    Caller(f"node:{node.id}", source),
                    "node.enrolled",
                    f"node:{node.id}",
                    after={"owner_id": node.owner_id, "name": node.name, "public_key": key},
                )
                return node
        except DomainError as exc:
            await self._refused(caller, "node.enrol.refused", f"token:{digest[:16]}", exc.code)
            raise

    # ------------------------------------------------------------------ registry

    async def list_nodes(self, principal: Principal, *, limit: int, offset: int) -> list[NodeView]:
        query = select(NodeRow).order_by(NodeRow.created_at, NodeRow.id).limit(limit).offset(offset)
        if not principal.role.sees_everything:
            query = query.where(NodeRow.owner_id == principal.user_id)
        async with self._db.read() as session:
            rows = list((await session.scalars(query)).all())
            meters = await self._meters_of(session, [r.id for r in rows])
        now = self._clock.now()
        return [NodeView(r, self._health(r, now), meters.get(r.id, ())) for r in rows]

    async def get_node(self, principal: Principal, node_id: str) -> NodeView:
        async with self._db.read() as session:
            row = await self._visible(session, principal, node_id)
            meters = await self._meters_of(session, [row.id])
        return NodeView(row, self._health(row, self._clock.now()), meters.get(row.id, ()))

    async def stats(self, principal: Principal, node_id: str) -> NodeStats:
        async with self._db.read() as session:
            row = await self._visible(session, principal, node_id)
            queue_depth = await session.scalar(
                select(func.count())
                .select_from(NodeCommandRow)
                .where(
                    NodeCommandRow.node_id == node_id,
                    NodeCommandRow.state.in_([CommandState.QUEUED.value, CommandState.SENT.value]),
                )
            )
        return NodeStats(
            node_id=row.id,
            health=self._health(row, self._clock.now()),
            linked=row.link_id is not None,
            uptime_s=row.uptime_s,
            last_heartbeat_at=row.last_heartbeat_at,
            buffer_depth=row.buffer_depth,
            queue_depth=int(queue_depth or 0),
            readings_relayed=row.readings_relayed,
            batches_rejected=row.batches_rejected,
            foreign_batches=row.foreign_batches,
            frames_rejected=row.frames_rejected,
            commands_applied=row.commands_applied,
            commands_failed=row.commands_failed,
        )

    async def revoke(self, principal: Principal, node_id: str, *, source: str) -> NodeView:
        """Revoke a node: its keys stop working and its live link is closed."""
        now = self._clock.now()
        async with self._db.write() as session:
            row = await self._visible(session, principal, node_id, lock=True)
            before = {"status": row.status}
            if row.status != REVOKED:
                row.status = REVOKED
                row.revoked_at = now
                row.health = NodeHealth.REVOKED.value
                await session.execute(
                    update(NodeKeyRow)
                    .where(NodeKeyRow.node_id == node_id, NodeKeyRow.retired_at.is_(None))
                    .values(retired_at=now)
                )
                await self._audit(
                    session,
                    Caller.of(principal, source),
                    "node.revoked",
                    f"node:{node_id}",
                    before=before,
                    after={"status": REVOKED},
                )
            meters = await self._meters_of(session, [node_id])
        await self._control(node_id, {"kind": "revoked"})
        await self._publish_status(row, NodeHealth.REVOKED)
        return NodeView(row, NodeHealth.REVOKED, meters.get(node_id, ()))

    async def attach_meter(
        self, principal: Principal, node_id: str, meter_id: str, *, source: str
    ) -> NodeView:
        """Put a meter behind a node: the node may relay that meter's signed batches."""
        now = self._clock.now()
        async with self._db.write() as session:
            row = await self._visible(session, principal, node_id)
            if await meter_repo.meter_by_id(session, meter_id) is None:
                raise MeterNotFoundError("no such meter", meter_id=meter_id)
            existing = await session.get(NodeMeterRow, meter_id)
            if existing is not None and existing.node_id != node_id:
                raise MeterAttachedElsewhereError(
                    "the meter sits behind another node", meter_id=meter_id
                )
            if existing is None:
                session.add(NodeMeterRow(meter_id=meter_id, node_id=node_id, attached_at=now))
                await self._audit(
                    session,
                    Caller.of(principal, source),
                    "node.meter.attached",
                    f"node:{node_id}",
                    after={"meter_id": meter_id},
                )
            return await self._view_after_change(session, row, now)

    async def detach_meter(
        self, principal: Principal, node_id: str, meter_id: str, *, source: str
    ) -> NodeView:
        now = self._clock.now()
        async with self._db.write() as session:
            row = await self._visible(session, principal, node_id)
            existing = await session.get(NodeMeterRow, meter_id)
            if existing is None or existing.node_id != node_id:
                raise MeterNotFoundError("the meter is not behind this node", meter_id=meter_id)
            await session.delete(existing)
            await self._audit(
                session,
                Caller.of(principal, source),
                "node.meter.detached",
                f"node:{node_id}",
                before={"meter_id": meter_id},
            )
            return await self._view_after_change(session, row, now)

    # ------------------------------------------------------------------ commands

    async def issue_command(
        self,
        principal: Principal,
        node_id: str,
        *,
        type_: str,
        payload: dict[str, Any],
        not_before: datetime | None,
        ttl_s: int,
        source: str,
    ) -> NodeCommandRow:
        """Queue a durable command for a node; it is delivered when the node is linked."""
        _not_config(type_)
        rows = await self._issue(
            principal, [node_id], type_, payload, not_before, ttl_s, source, job_id=None
        )
        return rows[0]

    async def issue_job(
        self,
        principal: Principal,
        node_ids: Sequence[str],
        *,
        type_: str,
        payload: dict[str, Any],
        not_before: datetime | None,
        ttl_s: int,
        source: str,
    ) -> tuple[str, list[NodeCommandRow]]:
        """One command to many nodes, tracked as a whole (the job) and per node. All or
        nothing: an unknown or revoked node refuses the whole job."""
        if not 1 <= len(set(node_ids)) == len(node_ids) <= MAX_JOB_NODES:
            raise InvalidCommandError(
                f"a job names 1 to {MAX_JOB_NODES} distinct nodes", nodes=len(node_ids)
            )
        job_id = new_id()
        _not_config(type_)
        rows = await self._issue(
            principal, node_ids, type_, payload, not_before, ttl_s, source, job_id=job_id
        )
        return job_id, rows

    async def job(self, principal: Principal, job_id: str) -> list[NodeCommandRow]:
        async with self._db.read() as session:
            rows = list(
                (
                    await session.scalars(
                        select(NodeCommandRow)
                        .where(NodeCommandRow.job_id == job_id)
                        .order_by(NodeCommandRow.node_id)
                    )
                ).all()
            )
            owners = {
                n.id: n.owner_id
                for n in (
                    await session.scalars(
                        select(NodeRow).where(NodeRow.id.in_([r.node_id for r in rows]))
                    )
                ).all()
            }
        visible = principal.role.sees_everything or all(
            owners.get(r.node_id) == principal.user_id for r in rows
        )
        if not rows or not visible:
            raise JobNotFoundError("no such job", job_id=job_id)
        return rows

    async def _issue(
        self,
        principal: Principal,
        node_ids: Sequence[str],
        type_: str,
        payload: dict[str, Any],
        not_before: datetime | None,
        ttl_s: int,
        source: str,
        *,
        job_id: str | None,
    ) -> list[NodeCommandRow]:
        check_command(type_, payload)
        if not 1 <= ttl_s <= MAX_TTL_S:
            raise InvalidCommandError(f"ttl_s must be between 1 and {MAX_TTL_S}", ttl_s=ttl_s)
        now = self._clock.now()
        if not_before is not None and not_before > now + timedelta(seconds=MAX_DELAY_S):
            raise InvalidCommandError(
                f"not_before lies more than {MAX_DELAY_S // 86_400} days ahead"
            )
        start = max(now, not_before) if not_before is not None else now
        rows: list[NodeCommandRow] = []
        async with self._db.write() as session:
            for node_id in node_ids:
                node = await self._visible(session, principal, node_id)
                if node.status == REVOKED:
                    raise NodeRevokedError(
                        "commands cannot be sent to a revoked node", node_id=node_id
                    )
                sent = with_lease(type_, payload, heartbeat_interval_s=node.heartbeat_interval_s)
                row = queued_command(
                    node_id,
                    type_,
                    sent,
                    created_by=principal.user_id,
                    created_at=now,
                    start=start,
                    ttl_s=ttl_s,
                    job_id=job_id,
                )
                session.add(row)
                rows.append(row)
            after: dict[str, Any] = {"type": type_, "payload": payload}
            if job_id is None:
                after["command_id"] = rows[0].id
                target, action = f"node:{node_ids[0]}", "node.command.issued"
            else:
                after["nodes"] = len(rows)
                target, action = f"job:{job_id}", "node.job.issued"
            await self._audit(session, Caller.of(principal, source), action, target, after=after)
        for row in rows:
            message: dict[str, Any] = {"kind": "command", "id": row.id}
            if row.next_attempt_at <= now:
                # Due now: the process holding the link sends it as it comes, without a
                # transaction of its own (the "sent" mark is written with the next round).
                message["command"] = command_wire(row)
            await self._control(row.node_id, message)
        return rows

    async def set_config(
        self, principal: Principal, node_id: str, config: dict[str, Any], *, source: str
    ) -> NodeCommandRow:
        """A new version of the node's desired config: checked, numbered one above the
        last, audited with the version it replaces, and sent as a durable
        ``config.apply`` command (kept for the longest command lifetime)."""
        check_config(config)
        now = self._clock.now()
        async with self._db.write() as session:
            node = await self._visible(session, principal, node_id, lock=True)
            if node.status == REVOKED:
                raise NodeRevokedError("a revoked node takes no config", node_id=node_id)
            earlier = await self._config_commands(session, node_id)
            version = 1 + max((json.loads(r.payload)["version"] for r in earlier), default=0)
            row = queued_command(
                node_id,
                CommandType.CONFIG.value,
                {"version": version, "config": config},
                created_by=principal.user_id,
                created_at=now,
                start=now,
                ttl_s=MAX_TTL_S,
                job_id=None,
            )
            session.add(row)
            before = json.loads(earlier[0].payload) if earlier else None
            await self._audit(
                session,
                Caller.of(principal, source),
                "node.config.set",
                f"node:{node_id}",
                before=before,
                after={"version": version, "config": config, "command_id": row.id},
            )
        await self._control(node_id, {"kind": "command", "id": row.id})
        return row

    async def config_history(self, principal: Principal, node_id: str) -> list[NodeCommandRow]:
        """The node's config versions, newest first (each a ``config.apply`` command)."""
        async with self._db.read() as session:
            await self._visible(session, principal, node_id)
            return await self._config_commands(session, node_id)

    async def _config_commands(self, session: AsyncSession, node_id: str) -> list[NodeCommandRow]:
        query = (
            select(NodeCommandRow)
            .where(
                NodeCommandRow.node_id == node_id,
                NodeCommandRow.type == CommandType.CONFIG.value,
            )
            .order_by(NodeCommandRow.created_at.desc(), NodeCommandRow.id.desc())
        )
        rows = list((await session.scalars(query)).all())
        rows.sort(key=lambda r: json.loads(r.payload)["version"], reverse=True)
        return rows

    async def request_key_rotation(
        self, principal: Principal, node_id: str, *, source: str
    ) -> NodeCommandRow:
        """Ask the node to rotate its key (a ``rotate_key`` command; it proves the new key)."""
        return await self.issue_command(
            principal,
            node_id,
            type_=CommandType.ROTATE_KEY.value,
            payload={},
            not_before=None,
            ttl_s=DEFAULT_TTL_S,
            source=source,
        )

    async def list_commands(
        self, principal: Principal, node_id: str, *, limit: int, offset: int
    ) -> list[NodeCommandRow]:
        async with self._db.read() as session:
            await self._visible(session, principal, node_id)
            query = (
                select(NodeCommandRow)
                .where(NodeCommandRow.node_id == node_id)
                .order_by(NodeCommandRow.created_at.desc(), NodeCommandRow.id)
                .limit(limit)
                .offset(offset)
            )
            return list((await session.scalars(query)).all())

    async def get_command(
        self, principal: Principal, node_id: str, command_id: str
    ) -> NodeCommandRow:
        async with self._db.read() as session:
            await self._visible(session, principal, node_id)
            row = await session.get(NodeCommandRow, command_id)
        if row is None or row.node_id != node_id:
            raise CommandNotFoundError("no such command", command_id=command_id)
        return row

    # ------------------------------------------------------------------ the link

    async def authenticate_link(
        self, node_id: str, nonce: str, signature: str, *, source: str
    ) -> LinkGrant:
        """Check a node's answer to the link's challenge; the new link supersedes any older.

        Links arriving together (a fleet relinking after a restart) are checked and
        recorded together: one read and one write for all those waiting, instead of one
        of each per link (see :meth:`_authenticate_group`)."""
        future: asyncio.Future[LinkGrant] = asyncio.get_running_loop().create_future()
        self._pending_links.append(_PendingLink(node_id, nonce, signature, source, future))
        writer = self._link_writer
        if writer is None or writer.done() or writer.get_loop() is not asyncio.get_running_loop():
            self._link_writer = asyncio.create_task(
                self._authenticate_pending(), name="node-link-auth"
            )
        return await future

    async def _authenticate_pending(self) -> None:
        """Drain the links waiting for their check, ``HEARTBEAT_CHUNK`` at a time; those
        that arrive while a group is being written form the next group."""
        while self._pending_links:
            group = self._pending_links[:HEARTBEAT_CHUNK]
            del self._pending_links[:HEARTBEAT_CHUNK]
            try:
                await self._authenticate_group(group)
            except Exception as exc:
                _log.exception("link authentication failed for %d links", len(group))
                for pending in group:
                    if not pending.future.done():
                        pending.future.set_exception(exc)

    async def _authenticate_group(self, group: list[_PendingLink]) -> None:
        ids = sorted({p.node_id for p in group})
        async with self._db.read() as session:
            nodes = {
                n.id: n
                for n in (
                    await session.execute(
                        select(
                            NodeRow.id,
                            NodeRow.status,
                            NodeRow.heartbeat_interval_s,
                            NodeRow.owner_id,
                        ).where(NodeRow.id.in_(ids))
                    )
                ).all()
            }
            keys: dict[str, list[str]] = {}
            for key_row in (
                await session.execute(
                    select(NodeKeyRow.node_id, NodeKeyRow.public_key).where(
                        NodeKeyRow.node_id.in_(ids), NodeKeyRow.retired_at.is_(None)
                    )
                )
            ).all():
                keys.setdefault(key_row.node_id, []).append(key_row.public_key)
        accepted: list[tuple[_PendingLink, LinkGrant]] = []
        latest: dict[str, str] = {}
        for pending in group:
            node = nodes.get(pending.node_id)
            caller = Caller(f"node:{pending.node_id}", pending.source)
            target = f"node:{pending.node_id}"
            error: DomainError
            if node is None:
                await self._refused(caller, "node.link.refused", target, "unknown node")
                error = NodeAuthenticationError("unknown node or wrong signature")
            elif node.status == REVOKED:
                await self._refused(caller, "node.link.refused", target, "node revoked")
                error = NodeRevokedError("this node was revoked", node_id=pending.node_id)
            else:
                message = challenge.link_message(pending.node_id, pending.nonce)
                key = next(
                    (
                        k
                        for k in keys.get(pending.node_id, [])
                        if challenge.verifies(message, pending.signature, k)
                    ),
                    None,
                )
                if key is not None:
                    grant = LinkGrant(
                        pending.node_id, key, new_id(), node.heartbeat_interval_s, node.owner_id
                    )
                    # Two links of one node in one group: the later one is recorded.
                    accepted.append((pending, grant))
                    latest[pending.node_id] = grant.link_id
                    continue
                await self._refused(caller, "node.link.refused", target, "bad signature")
                error = NodeAuthenticationError("unknown node or wrong signature")
            if not pending.future.done():
                pending.future.set_exception(error)
        if not accepted:
            return
        now = self._clock.now()
        linked = sorted(latest)
        async with self._db.write() as session:
            # Rows updated by primary key, in one order (two processes never deadlock).
            await session.execute(
                update(NodeRow),
                [
                    {"id": node_id, "link_id": latest[node_id], "linked_at": now}
                    for node_id in linked
                ],
            )
            # What was sent over an earlier link and never persisted goes out again now,
            # with what is due: taken here for the whole group, so that a link does not
            # open a transaction of its own to look for its commands.
            due = await self._take_due(session, linked, now, reset_sent=True)
        for node_id in linked:
            self._due_at_link[latest[node_id]] = due.get(node_id, [])
        for node_id in linked:
            await self._control(node_id, {"kind": "linked", "link_id": latest[node_id]})
        for pending, grant in accepted:
            if not pending.future.done():
                pending.future.set_result(grant)

    def commands_at_link(self, grant: LinkGrant) -> list[dict[str, Any]] | None:
        """The commands taken for this link when it was accepted (marked ``sent``), once;
        ``None`` if it was not accepted by this process's group write."""
        return self._due_at_link.pop(grant.link_id, None)

    async def link_closed(self, grant: LinkGrant) -> None:
        """Note that a link ended (the node's ``link_id`` cleared unless a newer link took
        over). Links that end together (a service stopping, a network cut) are written in
        one transaction, as they were accepted."""
        self._due_at_link.pop(grant.link_id, None)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending_closes.append((grant.node_id, grant.link_id, future))
        writer = self._close_writer
        if writer is None or writer.done() or writer.get_loop() is not asyncio.get_running_loop():
            self._close_writer = asyncio.create_task(
                self._write_pending_closes(), name="node-link-closes"
            )
        await future

    async def _write_pending_closes(self) -> None:
        while self._pending_closes:
            group = self._pending_closes[:HEARTBEAT_CHUNK]
            del self._pending_closes[:HEARTBEAT_CHUNK]
            try:
                table = _NODES
                async with self._db.write() as session:
                    # Core executemany: the ORM's by-primary-key form has no extra criteria.
                    connection = await session.connection()
                    await connection.execute(
                        update(table)
                        .where(
                            table.c.id == bindparam("b_id"),
                            table.c.link_id == bindparam("b_link"),
                        )
                        .values(link_id=None),
                        [
                            {"b_id": node_id, "b_link": link_id}
                            for node_id, link_id, _ in sorted(group, key=lambda g: g[0])
                        ],
                    )
            except Exception as exc:
                _log.exception("recording %d closed links failed", len(group))
                for *_, future in group:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for *_, future in group:
                    if not future.done():
                        future.set_result(None)

    async def links_to_close(self, grants: Sequence[LinkGrant]) -> dict[str, str]:
        """For many live links at once: node id → why its link must close (``revoked``,
        ``key_retired``, ``superseded``), for the links that must."""
        out: dict[str, str] = {}
        for start in range(0, len(grants), HEARTBEAT_CHUNK):
            chunk = grants[start : start + HEARTBEAT_CHUNK]
            async with self._db.read() as session:
                nodes = {
                    n.id: n
                    for n in (
                        await session.execute(
                            select(NodeRow.id, NodeRow.status, NodeRow.link_id).where(
                                NodeRow.id.in_([g.node_id for g in chunk])
                            )
                        )
                    ).all()
                }
                keys = {
                    k.public_key: k
                    for k in (
                        await session.execute(
                            select(NodeKeyRow.public_key, NodeKeyRow.retired_at).where(
                                NodeKeyRow.public_key.in_([g.public_key for g in chunk])
                            )
                        )
                    ).all()
                }
            for grant in chunk:
                node = nodes.get(grant.node_id)
                key = keys.get(grant.public_key)
                if node is None or node.status == REVOKED:
                    out[grant.node_id] = "revoked"
                elif key is None or key.retired_at is not None:
                    out[grant.node_id] = "key_retired"
                elif node.link_id is not None and node.link_id != grant.link_id:
                    out[grant.node_id] = "superseded"
        return out

    async def nodes_with_due_commands(self, node_ids: Sequence[str]) -> set[str]:
        """Which of these nodes have a command to send (or to expire) now.

        One query for the due commands of every node, by the ``(state, next_attempt_at)``
        index, kept for the nodes asked about. Its cost follows the commands due (those of
        unlinked nodes too, until the health round expires them), not the thousands of
        links a process holds, as a query naming every linked node did."""
        wanted = set(node_ids)
        if not wanted:
            return set()
        async with self._db.read() as session:
            found = await session.scalars(
                select(NodeCommandRow.node_id)
                .where(
                    NodeCommandRow.state.in_([CommandState.QUEUED.value, CommandState.SENT.value]),
                    NodeCommandRow.next_attempt_at <= self._clock.now(),
                )
                .distinct()
            )
            return wanted.intersection(found.all())

    async def record_heartbeat(self, grant: LinkGrant, frame: HeartbeatFrame) -> None:
        """Take a heartbeat: published at once (``node.heartbeat`` and the node's heartbeat
        channel), written with the others of its round by :meth:`flush_heartbeats`.

        A node's newer heartbeat replaces its older one still waiting, so a round writes
        one row per node however many heartbeats arrived."""
        now = self._clock.now()
        period = self.periods.period_of(now)
        interval = grant.heartbeat_interval_s
        slot = heartbeat_slot(now, self.periods.start(period), interval)
        beat = _PendingHeartbeat(grant.owner_id, frame, now, interval, frozenset({(period, slot)}))
        older = self._pending_heartbeats.get(grant.node_id)
        self._pending_heartbeats[grant.node_id] = beat.after(older)
        data = {
            "node_id": grant.node_id,
            "uptime_s": frame.uptime_s,
            "version": frame.version,
            "buffer_depth": frame.buffer_depth,
            "devices": frame.devices,
            "at": now.isoformat(),
        }
        await self._bus.publish(Event(EventType.NODE_HEARTBEAT, data, frozenset({grant.owner_id})))
        await self._publish_if_heard(heartbeat_channel(grant.node_id), data)

    async def _publish_if_heard(self, channel: str, payload: dict[str, Any]) -> None:
        """Encoded only for a channel someone may hear: a fleet heartbeats on thousands of
        channels, and in one process nothing usually listens to them."""
        if self._bus.may_hear(channel):
            await self._bus.publish_to(channel, json.dumps(payload))

    @property
    def pending_heartbeats(self) -> int:
        return len(self._pending_heartbeats)

    async def flush_heartbeats(self) -> int:
        """Write the waiting heartbeats, in one transaction per ``HEARTBEAT_CHUNK`` nodes;
        a node that turns healthy by it gets its ``node.status``. Returns the nodes written.

        If a write fails, its heartbeats wait for the next round (unless a newer one of
        the same node came in meanwhile), so none is dropped by a failed round."""
        pending, self._pending_heartbeats = self._pending_heartbeats, {}
        items = list(pending.items())
        written = 0
        for start in range(0, len(items), HEARTBEAT_CHUNK):
            chunk = dict(items[start : start + HEARTBEAT_CHUNK])
            try:
                turned_healthy = await self._write_heartbeats(chunk)
            except Exception:
                for node_id, beat in items[start:]:
                    newer = self._pending_heartbeats.get(node_id)
                    self._pending_heartbeats[node_id] = newer.after(beat) if newer else beat
                raise
            written += len(chunk)
            for row in turned_healthy:
                await self._publish_status(row, NodeHealth.HEALTHY)
        return written

    async def _write_heartbeats(self, chunk: dict[str, _PendingHeartbeat]) -> list[_NodeRef]:
        """One transaction: the few columns needed read, every row updated by primary key
        in one executemany (no ORM objects: a round may hold thousands of nodes)."""
        async with self._db.write() as session:
            query = select(
                NodeRow.id, NodeRow.name, NodeRow.owner_id, NodeRow.status, NodeRow.health
            ).where(NodeRow.id.in_(list(chunk)))
            if self._db.locks_rows:
                # Every row locked, in one order (two processes flushing never deadlock),
                # so no health round changes one between this read and the write.
                query = query.order_by(NodeRow.id).with_for_update()
            else:
                # SQLite: the write transaction holds the database; only the nodes that a
                # heartbeat turns healthy are needed (nearly every round: none).
                query = query.where(NodeRow.health != NodeHealth.HEALTHY.value)
            turned_healthy = [
                _NodeRef(row.id, row.name, row.owner_id)
                for row in (await session.execute(query)).all()
                if row.health != NodeHealth.HEALTHY.value and row.status != REVOKED
            ]
            # By primary key in id order; a node id with no row (none: nodes are revoked,
            # never deleted) updates nothing.
            await session.execute(
                _HEARTBEAT_UPDATE,
                [
                    {
                        "node": node_id,
                        "last_heartbeat_at": beat.at,
                        "uptime_s": beat.frame.uptime_s,
                        "software_version": beat.frame.version,
                        "buffer_depth": beat.frame.buffer_depth,
                        "device_summary": _device_summary(beat.frame.devices),
                        "health": NodeHealth.HEALTHY.value,
                    }
                    for node_id, beat in sorted(chunk.items())
                ],
            )
            await self._count_up_slots(session, chunk)
        return turned_healthy

    async def _count_up_slots(
        self, session: AsyncSession, beats: dict[str, _PendingHeartbeat]
    ) -> None:
        """The durable heartbeat history: per incentive period, the heartbeat intervals in
        which each node sent at least one heartbeat (each counted once). One read and one
        write per period for all the nodes of the round, not one of each per node."""
        for period in sorted({p for beat in beats.values() for p, _ in beat.slots}):
            taken = {
                node_id: sorted(s for p, s in beat.slots if p == period)
                for node_id, beat in beats.items()
                if any(p == period for p, _ in beat.slots)
            }
            current = await incentives_repo.up_slots_of(
                session,
                period,
                {node_id: beats[node_id].interval_s for node_id in taken},
                lock=self._db.locks_rows,
            )
            changed: dict[str, tuple[int, int]] = {}
            for node_id, slots in taken.items():
                up, last = current[node_id]
                fresh = [s for s in slots if s > last]
                if fresh:
                    changed[node_id] = (up + len(fresh), fresh[-1])
            await incentives_repo.set_up_slots(session, period, changed)

    async def _activity(self, session: AsyncSession, node: NodeRow) -> NodeActivityRow:
        """The node's activity row of the current incentive period."""
        period = self.periods.period_of(self._clock.now())
        return await incentives_repo.activity(
            session, node.id, period, node.heartbeat_interval_s, lock=self._db.locks_rows
        )

    async def take_due_commands(self, node_id: str) -> list[dict[str, Any]]:
        """Commands to send now: each marked ``sent`` with its next retry time; overdue
        ones expire instead. Returns their wire form."""
        now = self._clock.now()
        async with self._db.write() as session:
            due = await self._take_due(session, [node_id], now, reset_sent=False)
        return due.get(node_id, [])

    async def _take_due(
        self, session: AsyncSession, node_ids: Sequence[str], now: datetime, *, reset_sent: bool
    ) -> dict[str, list[dict[str, Any]]]:
        """Inside a write: the due commands of these nodes (at most ``LINK_BATCH`` each, the
        oldest first), marked ``sent`` with their next retry time, overdue ones expired.

        With ``reset_sent`` (a new link), every ``sent`` one counts as due: what went out
        over an older link and never became durable goes out again. So does every
        ``node_durable`` one, state unchanged: its outcome may have been lost with the
        older link (a service killed between the node's ack and its write), and the node
        answers a command it knows with its stored outcome, never running it again.
        Node id → wire forms."""
        live = [CommandState.QUEUED.value, CommandState.SENT.value]
        if reset_sent:
            live.append(CommandState.NODE_DURABLE.value)
        out: dict[str, list[dict[str, Any]]] = {}
        ids = list(node_ids)
        for start in range(0, len(ids), HEARTBEAT_CHUNK):
            part = ids[start : start + HEARTBEAT_CHUNK]
            due = NodeCommandRow.next_attempt_at <= now
            if reset_sent:
                due = or_(
                    due,
                    NodeCommandRow.state.in_(
                        [CommandState.SENT.value, CommandState.NODE_DURABLE.value]
                    ),
                )
            query = (
                select(NodeCommandRow)
                .where(NodeCommandRow.node_id.in_(part), NodeCommandRow.state.in_(live), due)
                .order_by(NodeCommandRow.node_id, NodeCommandRow.created_at, NodeCommandRow.id)
            )
            if len(part) == 1 and not reset_sent:
                query = query.limit(LINK_BATCH)
            if self._db.locks_rows:
                query = query.with_for_update(skip_locked=True)
            for row in (await session.scalars(query)).all():
                taken = out.setdefault(row.node_id, [])
                if row.state == CommandState.NODE_DURABLE.value:
                    # Asked again for its outcome: durable on the node, it never expires.
                    taken.append(command_wire(row))
                    continue
                if now >= row.expires_at:
                    row.state = CommandState.EXPIRED.value
                    row.finished_at = now
                    continue
                if len(taken) >= LINK_BATCH:
                    if reset_sent:
                        row.next_attempt_at = now  # the link's first sweep takes the rest
                    continue
                row.state = CommandState.SENT.value
                row.retries += 1
                row.sent_at = now
                row.next_attempt_at = now + timedelta(
                    seconds=retry_delay_s(row.retries, base_s=self._retry_base_s)
                )
                taken.append(command_wire(row))
        return out

    def note_sent(self, command_id: str) -> None:
        """A command pushed to its node as it was queued: marked ``sent`` (with its retry
        time) by the next :meth:`flush_sent`, together with the others of its round. Until
        then it stays ``queued`` and due, so a process that dies first sends it again."""
        self._pending_sent.setdefault(command_id, self._clock.now())

    async def flush_sent(self) -> int:
        """Write the waiting ``sent`` marks in one transaction; a command acked meanwhile
        keeps its newer state and gets only its send time. Returns the marks written."""
        pending, self._pending_sent = self._pending_sent, {}
        if not pending:
            return 0
        delay = timedelta(seconds=retry_delay_s(1, base_s=self._retry_base_s))
        try:
            async with self._db.write() as session:
                for command_id in sorted(pending):
                    at = pending[command_id]
                    await session.execute(
                        update(NodeCommandRow)
                        .where(NodeCommandRow.id == command_id, NodeCommandRow.sent_at.is_(None))
                        .values(sent_at=at, retries=NodeCommandRow.retries + 1)
                    )
                    await session.execute(
                        update(NodeCommandRow)
                        .where(
                            NodeCommandRow.id == command_id,
                            NodeCommandRow.state == CommandState.QUEUED.value,
                        )
                        .values(state=CommandState.SENT.value, next_attempt_at=at + delay)
                    )
        except Exception:
            for command_id, at in pending.items():
                self._pending_sent.setdefault(command_id, at)
            raise
        return len(pending)

    async def acknowledge(self, grant: LinkGrant, frame: AckFrame, *, source: str = "link") -> bool:
        """Apply a node's ack; False (and counted) if it names no command of this node.

        Acks arriving together (across links) are written in one transaction by one
        writer, as links are accepted (see :meth:`_write_acks`); each caller returns only
        after the write holding its ack committed. If that write fails, the caller gets
        its error and nothing of the group is kept: the command keeps its earlier state,
        so it is sent again at the node's next link and the node answers again."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending_acks.append(_PendingAck(grant, frame, source, future))
        writer = self._ack_writer
        if writer is None or writer.done() or writer.get_loop() is not asyncio.get_running_loop():
            self._ack_writer = asyncio.create_task(self._write_pending_acks(), name="node-acks")
        return await future

    async def _write_pending_acks(self) -> None:
        """Drain the waiting acks, ``HEARTBEAT_CHUNK`` at a time; those that arrive while a
        group is being written form the next group."""
        while self._pending_acks:
            group = self._pending_acks[:HEARTBEAT_CHUNK]
            del self._pending_acks[:HEARTBEAT_CHUNK]
            try:
                answers, finished = await self._write_acks(group)
            except Exception as exc:
                _log.exception("writing %d node acks failed", len(group))
                for pending in group:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                continue
            for pending, answer in zip(group, answers, strict=True):
                if not pending.future.done():
                    pending.future.set_result(answer)
            # Committed and answered: a lost notice must not stop the writer.
            try:
                for node_id, command_id, state in finished:
                    await self._bus.publish_to(
                        events_channel(node_id),
                        json.dumps({"kind": "command", "id": command_id, "state": state}),
                    )
            except Exception:
                _log.exception("publishing finished commands failed")

    async def _write_acks(
        self, group: list[_PendingAck]
    ) -> tuple[list[bool], list[tuple[str, str, str]]]:
        """One transaction for a group of acks, applied in their order of arrival (so a
        ``node_durable`` and an ``applied`` of one command in one group both count, and a
        repeated ack changes nothing). Returns each ack's answer and the commands finished
        by the group: (node id, command id, state)."""
        now = self._clock.now()
        async with self._db.write() as session:
            # Rows locked in one order (commands, then nodes, each by id): two processes
            # writing groups never deadlock.
            query = (
                select(NodeCommandRow)
                .where(NodeCommandRow.id.in_(sorted({p.frame.id for p in group})))
                .order_by(NodeCommandRow.id)
            )
            if self._db.locks_rows:
                query = query.with_for_update()
            commands = {row.id: row for row in (await session.scalars(query)).all()}
            # The node rows are needed only to count: an ack naming no command of its
            # node, or a command finished.
            counted = sorted(
                {
                    p.grant.node_id
                    for p in group
                    if (row := commands.get(p.frame.id)) is None
                    or row.node_id != p.grant.node_id
                    or CommandState(p.frame.state) is not CommandState.NODE_DURABLE
                }
            )
            nodes: dict[str, NodeRow] = {}
            if counted:
                node_query = select(NodeRow).where(NodeRow.id.in_(counted)).order_by(NodeRow.id)
                if self._db.locks_rows:
                    node_query = node_query.with_for_update()
                nodes = {n.id: n for n in (await session.scalars(node_query)).all()}
            answers: list[bool] = []
            finished: list[tuple[str, str, str]] = []
            for pending in group:
                grant, frame = pending.grant, pending.frame
                row = commands.get(frame.id)
                if row is None or row.node_id != grant.node_id:
                    if (counter := nodes.get(grant.node_id)) is not None:
                        counter.frames_rejected += 1
                    answers.append(False)
                    continue
                answers.append(True)
                target = CommandState(frame.state)
                if not can_move(CommandState(row.state), target):
                    continue  # a repeated ack (after a reconnect) changes nothing
                row.state = target.value
                if target is CommandState.NODE_DURABLE:
                    row.durable_at = now
                    continue
                node = nodes[grant.node_id]
                row.durable_at = row.durable_at or now
                row.finished_at = now
                row.detail = frame.detail
                row.result = None if frame.result is None else json.dumps(frame.result)
                act = await self._activity(session, node)
                if target is CommandState.APPLIED:
                    node.commands_applied += 1
                    act.commands_done += 1
                else:
                    node.commands_failed += 1
                    act.commands_failed += 1
                finished.append((grant.node_id, frame.id, target.value))
                if row.type == CommandType.CONFIG.value:
                    applied = target is CommandState.APPLIED
                    await self._audit(
                        session,
                        Caller(f"node:{grant.node_id}", pending.source),
                        "node.config.applied" if applied else "node.config.refused",
                        f"node:{grant.node_id}",
                        after={
                            "version": json.loads(row.payload)["version"],
                            "detail": frame.detail,
                            "result": frame.result,
                        },
                    )
        return answers, finished

    async def relay_readings(
        self, grant: LinkGrant, batches: Sequence[dict[str, Any]]
    ) -> list[RelayOutcome]:
        """Relayed batches, validated exactly as ``POST /readings/batch`` validates them;
        a batch of a meter not behind this node is refused and counted."""
        async with self._db.read() as session:
            behind = set(
                (
                    await session.scalars(
                        select(NodeMeterRow.meter_id).where(NodeMeterRow.node_id == grant.node_id)
                    )
                ).all()
            )
        outcomes: dict[int, RelayOutcome] = {}
        relayed: list[tuple[int, dict[str, Any]]] = []
        for index, batch in enumerate(batches):
            meter_id = batch.get("meter_id")
            if not isinstance(meter_id, str) or meter_id not in behind:
                outcomes[index] = RelayOutcome(
                    index,
                    None,
                    MeterNotBehindNodeError(
                        "the batch's meter is not attached to this node", meter_id=meter_id
                    ),
                )
            else:
                relayed.append((index, batch))
        if relayed:
            answers = await self._metering.ingest_many([b for _, b in relayed], via="node")
            for (index, _), answer in zip(relayed, answers, strict=True):
                if isinstance(answer, DomainError):
                    outcomes[index] = RelayOutcome(index, None, answer)
                else:
                    outcomes[index] = RelayOutcome(index, answer, None)
        ordered = [outcomes[i] for i in range(len(batches))]
        foreign = sum(1 for o in ordered if isinstance(o.error, MeterNotBehindNodeError))
        rejected = sum(1 for o in ordered if o.error is not None)
        accepted = sum(o.result.accepted + o.result.quarantined for o in ordered if o.result)
        async with self._db.write() as session:
            node = await session.get(NodeRow, grant.node_id, with_for_update=self._db.locks_rows)
            assert node is not None
            node.readings_relayed += accepted
            node.batches_rejected += rejected
            node.foreign_batches += foreign
            act = await self._activity(session, node)
            act.readings += accepted
            # A batch whose meter signature does not verify was forged or tampered with.
            act.tampered_batches += sum(
                1 for o in ordered if isinstance(o.error, BadSignatureError)
            )
        return ordered

    async def count_bad_frame(self, node_id: str) -> None:
        async with self._db.write() as session:
            node = await session.get(NodeRow, node_id, with_for_update=self._db.locks_rows)
            if node is not None:
                node.frames_rejected += 1

    async def rotate_key(
        self, grant: LinkGrant, nonce: str, new_public_key: str, signature: str, *, source: str
    ) -> LinkGrant:
        """Bind a new key proven over this link's nonce; the key the link used is retired."""
        message = challenge.rotation_message(grant.node_id, nonce, new_public_key)
        caller = Caller(f"node:{grant.node_id}", source)
        if not challenge.verifies(message, signature, new_public_key):
            await self._refused(
                caller, "node.key.rotation_refused", f"node:{grant.node_id}", "bad signature"
            )
            raise NodeAuthenticationError("the new key's signature does not verify")
        parse_ed25519_public_key(new_public_key)
        now = self._clock.now()
        async with self._db.write() as session:
            if await session.get(NodeKeyRow, new_public_key) is not None:
                raise NodeKeyTakenError("this public key is already bound")
            old = await session.get(
                NodeKeyRow, grant.public_key, with_for_update=self._db.locks_rows
            )
            if old is not None and old.retired_at is None:
                old.retired_at = now
            session.add(
                NodeKeyRow(public_key=new_public_key, node_id=grant.node_id, created_at=now)
            )
            await self._audit(
                session,
                caller,
                "node.key.rotated",
                f"node:{grant.node_id}",
                before={"public_key": grant.public_key},
                after={"public_key": new_public_key},
            )
        return replace(grant, public_key=new_public_key)

    async def publish_node_event(self, grant: LinkGrant, name: str, data: dict[str, Any]) -> None:
        payload = {"node_id": grant.node_id, "name": name, "data": data}
        await self._publish_if_heard(events_channel(grant.node_id), payload)
        await self._bus.publish(Event(EventType.NODE_EVENT, payload, frozenset({grant.owner_id})))

    # ------------------------------------------------------------------ health

    async def evaluate_health(self) -> dict[NodeHealth, int]:
        """Update each node's health from its heartbeats; publish every change
        (``node.status``), log an alert when a node goes offline; expire overdue
        commands. Counts per health. Waiting heartbeats are written first."""
        await self.flush_heartbeats()
        now = self._clock.now()
        changed: list[tuple[_NodeRef, NodeHealth]] = []
        # Only the nodes whose health may have changed are read (most rounds: none), the
        # counts are counted by the database: with thousands of nodes the round's cost was
        # the rows it built, every one of them every round.
        overdue = (
            NodeCommandRow.state.in_([CommandState.QUEUED.value, CommandState.SENT.value]),
            NodeCommandRow.expires_at <= now,
        )
        counts = dict.fromkeys(NodeHealth, 0)
        async with self._db.read() as session:
            intervals = (
                await session.scalars(select(NodeRow.heartbeat_interval_s).distinct())
            ).all()
            candidates = (
                await session.execute(
                    select(
                        NodeRow.id,
                        NodeRow.name,
                        NodeRow.owner_id,
                        NodeRow.status,
                        NodeRow.health,
                        NodeRow.last_heartbeat_at,
                        NodeRow.heartbeat_interval_s,
                    ).where(_health_may_have_changed(now, intervals))
                )
            ).all()
            for stored, count in await session.execute(
                select(NodeRow.health, func.count()).group_by(NodeRow.health)
            ):
                counts[NodeHealth(stored)] += count
            any_overdue = (
                await session.scalar(select(NodeCommandRow.id).where(*overdue).limit(1))
            ) is not None
        was: dict[str, NodeHealth] = {}
        for node in candidates:
            health = node_health(
                revoked=node.status == REVOKED,
                last_heartbeat_at=node.last_heartbeat_at,
                now=now,
                interval_s=node.heartbeat_interval_s,
            )
            if health.value != node.health:
                changed.append((_NodeRef(node.id, node.name, node.owner_id), health))
                was[node.id] = NodeHealth(node.health)
        if changed or any_overdue:
            changed = await self._write_health(changed, overdue, now)
        for row, health in changed:
            counts[was[row.id]] -= 1
            counts[health] += 1
            if health is NodeHealth.OFFLINE:
                _log.warning("node offline: %s (%s)", row.id, row.name)
            await self._publish_status(row, health)
        return counts

    async def _write_health(
        self,
        changed: list[tuple[_NodeRef, NodeHealth]],
        overdue: tuple[ColumnElement[bool], ...],
        now: datetime,
    ) -> list[tuple[_NodeRef, NodeHealth]]:
        """One write (opened only when there is something to write): overdue commands
        expired, and the health changes still true inside it. Returns those."""
        async with self._db.write() as session:
            # Commands that never became durable on their node in time expire, linked or not.
            await session.execute(
                update(NodeCommandRow)
                .where(*overdue)
                .values(state=CommandState.EXPIRED.value, finished_at=now)
            )
            # Only the nodes whose health changed, judged again inside the write: a
            # heartbeat written since the read above wins.
            confirmed: list[tuple[_NodeRef, NodeHealth]] = []
            for start in range(0, len(changed), HEARTBEAT_CHUNK):
                part = dict(changed[start : start + HEARTBEAT_CHUNK])
                by_id = {ref.id: ref for ref in part}
                query = select(
                    NodeRow.id,
                    NodeRow.status,
                    NodeRow.health,
                    NodeRow.last_heartbeat_at,
                    NodeRow.heartbeat_interval_s,
                ).where(NodeRow.id.in_(list(by_id)))
                if self._db.locks_rows:
                    query = query.order_by(NodeRow.id).with_for_update()
                values = []
                for fresh in (await session.execute(query)).all():
                    health = node_health(
                        revoked=fresh.status == REVOKED,
                        last_heartbeat_at=fresh.last_heartbeat_at,
                        now=now,
                        interval_s=fresh.heartbeat_interval_s,
                    )
                    if health.value != fresh.health:
                        values.append({"id": fresh.id, "health": health.value})
                        confirmed.append((by_id[fresh.id], health))
                if values:
                    await session.execute(update(NodeRow), values)
        return confirmed

    # ------------------------------------------------------------------ helpers

    def _health(self, row: NodeRow, now: datetime) -> NodeHealth:
        return node_health(
            revoked=row.status == REVOKED,
            last_heartbeat_at=row.last_heartbeat_at,
            now=now,
            interval_s=row.heartbeat_interval_s,
        )

    async def _visible(
        self, session: AsyncSession, principal: Principal, node_id: str, *, lock: bool = False
    ) -> NodeRow:
        row = await session.get(NodeRow, node_id, with_for_update=lock and self._db.locks_rows)
        # Someone else's node is reported as absent, not as forbidden.
        if row is None or not (principal.role.sees_everything or row.owner_id == principal.user_id):
            raise NodeNotFoundError("no such node", node_id=node_id)
        return row

    async def _view_after_change(
        self, session: AsyncSession, row: NodeRow, now: datetime
    ) -> NodeView:
        """The node as it stands once this transaction's changes are flushed."""
        await session.flush()
        meters = await self._meters_of(session, [row.id])
        return NodeView(row, self._health(row, now), meters.get(row.id, ()))

    async def _meters_of(
        self, session: AsyncSession, node_ids: Sequence[str]
    ) -> dict[str, tuple[str, ...]]:
        if not node_ids:
            return {}
        rows = (
            await session.scalars(
                select(NodeMeterRow)
                .where(NodeMeterRow.node_id.in_(list(node_ids)))
                .order_by(NodeMeterRow.meter_id)
            )
        ).all()
        found: dict[str, list[str]] = {}
        for r in rows:
            found.setdefault(r.node_id, []).append(r.meter_id)
        return {k: tuple(v) for k, v in found.items()}

    async def _audit(
        self,
        session: AsyncSession,
        caller: Caller,
        action: str,
        target: str,
        *,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
    ) -> None:
        await audit.append(
            session,
            lock=self._db.locks_rows,
            at=self._clock.now(),
            actor=caller.actor,
            action=action,
            target=target,
            source=caller.source,
            before=before,
            after=after,
        )

    async def _refused(self, caller: Caller, action: str, target: str, reason: str) -> None:
        async with self._db.write() as session:
            await self._audit(session, caller, action, target, after={"refused": reason})

    async def _control(self, node_id: str, message: dict[str, Any]) -> None:
        await self._bus.publish_to(commands_channel(node_id), json.dumps(message))

    async def _publish_status(self, row: NodeRow | _NodeRef, health: NodeHealth) -> None:
        await self._bus.publish(
            Event(
                EventType.NODE_STATUS,
                {"node_id": row.id, "name": row.name, "health": health.value},
                frozenset({row.owner_id}),
            )
        )


@dataclass(frozen=True, slots=True)
class _PendingLink:
    node_id: str
    nonce: str
    signature: str
    source: str
    future: asyncio.Future[LinkGrant]


@dataclass(frozen=True, slots=True)
class _PendingAck:
    grant: LinkGrant
    frame: AckFrame
    source: str
    future: asyncio.Future[bool]


@dataclass(frozen=True, slots=True)
class _NodeRef:
    """What a ``node.status`` event names of a node."""

    id: str
    name: str
    owner_id: str


def _not_config(type_: str) -> None:
    if type_ == CommandType.CONFIG.value:
        raise InvalidCommandError(
            "a node's config is set with PUT /api/v1/nodes/{node_id}/config, which numbers it"
        )


def command_wire(row: NodeCommandRow) -> dict[str, Any]:
    """A command as the node receives it."""
    return {
        "id": row.id,
        "type": row.type,
        "payload": json.loads(row.payload),
        "issued_at": row.created_at.isoformat(),
        "not_before": row.not_before.isoformat(),
        "expires_at": row.expires_at.isoformat(),
    }


_SORTED_JSON = json.JSONEncoder(sort_keys=True)


def _device_summary(devices: dict[str, Any]) -> str:
    """A heartbeat's device summary as stored: JSON, keys sorted (one encoder for all)."""
    return _SORTED_JSON.encode(devices) if devices else "{}"


def _health_may_have_changed(now: datetime, intervals: Sequence[int]) -> ColumnElement[bool]:
    """Every node whose health by :func:`node_health` may differ from its stored health
    at ``now`` (and a few more: each bound is widened by a second, so no rounding at a
    bound can leave one out). A healthy node turns unhealthy 3 intervals after its last
    heartbeat, an unhealthy one offline after 5 (or healthy again on a newer heartbeat),
    an offline one healthy or unhealthy on a newer heartbeat, a pending one on its first,
    and a revoked node is revoked."""
    slack = timedelta(seconds=1)
    last = NodeRow.last_heartbeat_at
    by_interval = []
    for interval_s in intervals:
        unhealthy_from = now - timedelta(seconds=UNHEALTHY_AFTER_MISSED * interval_s)
        offline_from = now - timedelta(seconds=OFFLINE_AFTER_MISSED * interval_s)
        by_interval.append(
            and_(
                NodeRow.heartbeat_interval_s == interval_s,
                or_(
                    and_(
                        NodeRow.health == NodeHealth.HEALTHY.value, last <= unhealthy_from + slack
                    ),
                    and_(
                        NodeRow.health == NodeHealth.UNHEALTHY.value,
                        or_(last <= offline_from + slack, last > unhealthy_from - slack),
                    ),
                    and_(NodeRow.health == NodeHealth.OFFLINE.value, last > offline_from - slack),
                ),
            )
        )
    return or_(
        and_(NodeRow.status == REVOKED, NodeRow.health != NodeHealth.REVOKED.value),
        and_(NodeRow.status != REVOKED, NodeRow.health == NodeHealth.REVOKED.value),
        and_(NodeRow.health == NodeHealth.PENDING.value, last.is_not(None)),
        and_(NodeRow.health != NodeHealth.PENDING.value, last.is_(None)),
        *by_interval,
    )


class NodeHealthTask(PeriodicTask):
    """Every ``tick_s`` seconds: node health from heartbeats, ``node.status`` events on
    changes, and the ``wattx_nodes{health=...}`` gauge."""

    name = "wattx-node-health"

    def __init__(self, nodes: NodeService, registry: CollectorRegistry, *, tick_s: float) -> None:
        super().__init__(tick_s=tick_s)
        self._nodes = nodes
        self._gauge = Gauge("wattx_nodes", "Edge nodes by health", ["health"], registry=registry)

    async def run_round(self) -> None:
        try:
            counts = await self._nodes.evaluate_health()
        except Exception:
            _log.exception("node health round failed")
            return
        for health, count in counts.items():
            self._gauge.labels(health=health.value).set(count)


class HeartbeatFlushTask(PeriodicTask):
    """Every ``tick_s`` seconds: the heartbeats that came in since, written together
    (one row per node), and the ``sent`` marks of the commands pushed since; the last
    round runs when the service stops."""

    name = "wattx-node-heartbeats"

    def __init__(self, nodes: NodeService, *, tick_s: float) -> None:
        super().__init__(tick_s=tick_s)
        self._nodes = nodes

    async def run_round(self) -> None:
        try:
            await self._nodes.flush_sent()
        except Exception:
            _log.exception("sent marks flush failed; they wait for the next round")
        try:
            await self._nodes.flush_heartbeats()
        except Exception:
            _log.exception("heartbeat flush failed; the heartbeats wait for the next round")

    async def stop(self) -> None:
        await super().stop()
        await self.run_round()


def queued_command(
    node_id: str,
    type_: str,
    payload: dict[str, Any],
    *,
    created_by: str,
    created_at: datetime,
    start: datetime,
    ttl_s: int,
    job_id: str | None,
) -> NodeCommandRow:
    """A new durable command, queued for its node from ``start`` for ``ttl_s`` seconds."""
    return NodeCommandRow(
        id=new_id(),
        node_id=node_id,
        job_id=job_id,
        type=type_,
        payload=json.dumps(payload, sort_keys=True),
        state=CommandState.QUEUED.value,
        created_by=created_by,
        created_at=created_at,
        not_before=start,
        expires_at=start + timedelta(seconds=ttl_s),
        retries=0,
        next_attempt_at=start,
        sent_at=None,
        durable_at=None,
        finished_at=None,
        detail=None,
        result=None,
    )
