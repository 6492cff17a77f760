"""Edge nodes, their commands, and the audit log."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, Field, StrictInt

from wattx.api.schemas.common import Page, StrictModel
from wattx.nodes import commands, registration
from wattx.services.community.nodes import NodeStats, NodeView
from wattx.store.models_nodes import AuditLogRow, NodeCommandRow


class RegistrationTokenIn(StrictModel):
    owner_id: str = Field(min_length=1, max_length=32, description="the node operator's user id")
    name: str = Field(min_length=1, max_length=100, description="the node's name, e.g. its site")
    ttl_s: StrictInt = Field(
        default=registration.DEFAULT_TTL_S,
        ge=registration.MIN_TTL_S,
        le=registration.MAX_TTL_S,
        description="seconds until the token expires (at most 24 h)",
    )


class RegistrationTokenOut(BaseModel):
    token: str = Field(description="shown once; only its hash is stored")
    owner_id: str
    name: str
    expires_at: datetime


class EnrolIn(StrictModel):
    registration_token: str = Field(min_length=1, max_length=100)
    public_key: str = Field(
        min_length=1, max_length=100, description="the node's Ed25519 public key, hex or base64"
    )


class EnrolOut(BaseModel):
    node_id: str
    name: str
    heartbeat_interval_s: int
    link_path: str = "/api/v1/nodes/link"


class NodeOut(BaseModel):
    id: str
    name: str
    owner_id: str
    status: str = Field(description="active or revoked")
    health: str = Field(description="pending, healthy, unhealthy, offline or revoked")
    linked: bool
    created_at: datetime
    revoked_at: datetime | None
    heartbeat_interval_s: int
    last_heartbeat_at: datetime | None
    software_version: str | None
    devices: dict[str, Any]
    meter_ids: list[str]

    @classmethod
    def of(cls, view: NodeView) -> NodeOut:
        r = view.row
        return cls(
            id=r.id,
            name=r.name,
            owner_id=r.owner_id,
            status=r.status,
            health=view.health.value,
            linked=r.link_id is not None,
            created_at=r.created_at,
            revoked_at=r.revoked_at,
            heartbeat_interval_s=r.heartbeat_interval_s,
            last_heartbeat_at=r.last_heartbeat_at,
            software_version=r.software_version,
            devices=json.loads(r.device_summary),
            meter_ids=list(view.meter_ids),
        )


class NodeList(BaseModel):
    items: list[NodeOut]
    page: Page


class NodeStatsOut(BaseModel):
    node_id: str
    health: str
    linked: bool
    uptime_s: int | None
    last_heartbeat_at: datetime | None
    buffer_depth: int | None = Field(description="reading batches buffered on the node")
    queue_depth: int = Field(description="commands not yet persisted by the node")
    readings_relayed: int
    batches_rejected: int
    foreign_batches: int = Field(description="batches of meters not behind this node")
    frames_rejected: int
    commands_applied: int
    commands_failed: int

    @classmethod
    def of(cls, stats: NodeStats) -> NodeStatsOut:
        return cls(
            node_id=stats.node_id,
            health=stats.health.value,
            linked=stats.linked,
            uptime_s=stats.uptime_s,
            last_heartbeat_at=stats.last_heartbeat_at,
            buffer_depth=stats.buffer_depth,
            queue_depth=stats.queue_depth,
            readings_relayed=stats.readings_relayed,
            batches_rejected=stats.batches_rejected,
            foreign_batches=stats.foreign_batches,
            frames_rejected=stats.frames_rejected,
            commands_applied=stats.commands_applied,
            commands_failed=stats.commands_failed,
        )


class CommandIn(StrictModel):
    type: str = Field(description="device.command, diagnostics or rotate_key")
    payload: dict[str, Any] = Field(default_factory=dict)
    not_before: AwareDatetime | None = None
    ttl_s: StrictInt = Field(default=commands.DEFAULT_TTL_S, ge=1, le=commands.MAX_TTL_S)


class JobIn(CommandIn):
    node_ids: list[str] = Field(min_length=1, max_length=1000, description="distinct node ids")


class CommandOut(BaseModel):
    id: str
    node_id: str
    job_id: str | None
    type: str
    payload: dict[str, Any]
    state: str = Field(description="queued, sent, node_durable, applied, rejected or expired")
    created_by: str
    created_at: datetime
    not_before: datetime
    expires_at: datetime
    retries: int
    sent_at: datetime | None
    durable_at: datetime | None
    finished_at: datetime | None
    detail: str | None
    result: dict[str, Any] | None

    @classmethod
    def of(cls, r: NodeCommandRow) -> CommandOut:
        return cls(
            id=r.id,
            node_id=r.node_id,
            job_id=r.job_id,
            type=r.type,
            payload=json.loads(r.payload),
            state=r.state,
            created_by=r.created_by,
            created_at=r.created_at,
            not_before=r.not_before,
            expires_at=r.expires_at,
            retries=r.retries,
            sent_at=r.sent_at,
            durable_at=r.durable_at,
            finished_at=r.finished_at,
            detail=r.detail,
            result=None if r.result is None else json.loads(r.result),
        )


class JobOut(BaseModel):
    job_id: str
    type: str
    total: int
    by_state: dict[str, int] = Field(description="how many of the job's commands are in each state")
    commands: list[CommandOut]


class CommandList(BaseModel):
    items: list[CommandOut]
    page: Page


class AuditEntryOut(BaseModel):
    seq: int
    at: datetime
    actor: str = Field(description="user:{id}, node:{id} or anonymous")
    action: str
    target: str
    source: str = Field(description="client address")
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, r: AuditLogRow) -> AuditEntryOut:
        return cls(
            seq=r.seq,
            at=r.at,
            actor=r.actor,
            action=r.action,
            target=r.target,
            source=r.source,
            before=None if r.before is None else json.loads(r.before),
            after=None if r.after is None else json.loads(r.after),
            prev_hash=r.prev_hash,
            hash=r.hash,
        )


class AuditList(BaseModel):
    items: list[AuditEntryOut]
    page: Page


class AuditVerifyOut(BaseModel):
    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str | None


class NodeConfigIn(StrictModel):
    config: dict[str, Any] = Field(
        description="the keys to set: server, heartbeat_interval_s, control_cycle_s"
    )


class ConfigVersionOut(BaseModel):
    version: int
    config: dict[str, Any]
    command_id: str
    state: str = Field(
        description="the config.apply command's state: applied, rejected (refused or rolled "
        "back), or on its way"
    )
    created_by: str
    created_at: datetime
    finished_at: datetime | None
    detail: str | None

    @classmethod
    def of(cls, r: NodeCommandRow) -> ConfigVersionOut:
        payload = json.loads(r.payload)
        return cls(
            version=payload["version"],
            config=payload["config"],
            command_id=r.id,
            state=r.state,
            created_by=r.created_by,
            created_at=r.created_at,
            finished_at=r.finished_at,
            detail=r.detail,
        )


class NodeConfigOut(BaseModel):
    node_id: str
    desired: ConfigVersionOut | None = Field(description="the newest version set")
    applied: ConfigVersionOut | None = Field(description="the newest version the node applied")
    history: list[ConfigVersionOut] = Field(description="every version, newest first")

    @classmethod
    def of(cls, node_id: str, rows: list[NodeCommandRow]) -> NodeConfigOut:
        history = [ConfigVersionOut.of(r) for r in rows]
        applied = next((v for v in history if v.state == commands.CommandState.APPLIED), None)
        return cls(
            node_id=node_id,
            desired=history[0] if history else None,
            applied=applied,
            history=history,
        )
