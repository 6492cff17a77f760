"""Edge nodes: registration tokens, enrolment, the registry, commands, and the link."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Path, Request, WebSocket, status
from starlette.websockets import WebSocketDisconnect

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.input import StrictJsonRoute
from wattx.api.schemas.common import Limit, Offset, page
from wattx.api.schemas.nodes import (
    CommandIn,
    CommandList,
    CommandOut,
    EnrolIn,
    EnrolOut,
    JobIn,
    JobOut,
    NodeConfigIn,
    NodeConfigOut,
    NodeList,
    NodeOut,
    NodeStatsOut,
    RegistrationTokenIn,
    RegistrationTokenOut,
)
from wattx.api.state import AppState
from wattx.ingest.node_link import LinkClosedError
from wattx.store.models_nodes import NodeCommandRow

router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"], route_class=StrictJsonRoute)

NodeId = Annotated[str, Path(min_length=1, max_length=64)]
CommandId = Annotated[str, Path(min_length=1, max_length=64)]
JobId = Annotated[str, Path(min_length=1, max_length=64)]
MeterId = Annotated[str, Path(min_length=1, max_length=64)]


def _source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/registration-tokens", status_code=status.HTTP_201_CREATED)
async def create_registration_token(
    body: RegistrationTokenIn, request: Request, principal: CurrentPrincipal, state: State
) -> RegistrationTokenOut:
    """A one-time token to enrol one node of a node operator; shown only in this answer."""
    token, row = await state.nodes.create_registration_token(
        principal, owner_id=body.owner_id, name=body.name, ttl_s=body.ttl_s, source=_source(request)
    )
    return RegistrationTokenOut(
        token=token, owner_id=row.owner_id, name=row.node_name, expires_at=row.expires_at
    )


@router.post("/enrol", status_code=status.HTTP_201_CREATED)
async def enrol(body: EnrolIn, request: Request, state: State) -> EnrolOut:
    """A node spends its registration token and binds its public key; no user token needed.

    401 ``registration_token_invalid``, ``registration_token_expired`` or
    ``registration_token_used``; 409 ``node_key_taken``."""
    node = await state.nodes.enrol(
        body.registration_token, body.public_key, source=_source(request)
    )
    return EnrolOut(node_id=node.id, name=node.name, heartbeat_interval_s=node.heartbeat_interval_s)


@router.post("/jobs", status_code=status.HTTP_201_CREATED)
async def issue_job(
    body: JobIn, request: Request, principal: CurrentPrincipal, state: State
) -> JobOut:
    """One command to many nodes: a durable command per node, tracked together. All or
    nothing: an unknown (404) or revoked (403) node refuses the whole job."""
    job_id, rows = await state.nodes.issue_job(
        principal,
        body.node_ids,
        type_=body.type,
        payload=body.payload,
        not_before=body.not_before,
        ttl_s=body.ttl_s,
        source=_source(request),
    )
    return _job_out(job_id, rows)


@router.get("/jobs/{job_id}")
async def get_job(job_id: JobId, principal: CurrentPrincipal, state: State) -> JobOut:
    """The job as a whole (commands per state) and per node."""
    return _job_out(job_id, await state.nodes.job(principal, job_id))


def _job_out(job_id: str, rows: list[NodeCommandRow]) -> JobOut:
    return JobOut(
        job_id=job_id,
        type=rows[0].type,
        total=len(rows),
        by_state=dict(Counter(r.state for r in rows)),
        commands=[CommandOut.of(r) for r in rows],
    )


@router.get("")
async def list_nodes(
    principal: CurrentPrincipal, state: State, limit: Limit = 50, offset: Offset = 0
) -> NodeList:
    """Nodes: all of them for operators and auditors, their own for a node operator."""
    views = await state.nodes.list_nodes(principal, limit=limit, offset=offset)
    return NodeList(items=[NodeOut.of(v) for v in views], page=page(limit, offset, len(views)))


@router.get("/{node_id}")
async def get_node(node_id: NodeId, principal: CurrentPrincipal, state: State) -> NodeOut:
    return NodeOut.of(await state.nodes.get_node(principal, node_id))


@router.get("/{node_id}/stats")
async def node_stats(node_id: NodeId, principal: CurrentPrincipal, state: State) -> NodeStatsOut:
    """Uptime, last heartbeat, buffer and queue depth, readings relayed, commands done/failed."""
    return NodeStatsOut.of(await state.nodes.stats(principal, node_id))


@router.delete("/{node_id}")
async def revoke_node(
    node_id: NodeId, request: Request, principal: CurrentPrincipal, state: State
) -> NodeOut:
    """Revoke the node: its keys stop working and its live link is closed (code 4403)."""
    return NodeOut.of(await state.nodes.revoke(principal, node_id, source=_source(request)))


@router.post("/{node_id}/key-rotation", status_code=status.HTTP_202_ACCEPTED)
async def rotate_key(
    node_id: NodeId, request: Request, principal: CurrentPrincipal, state: State
) -> CommandOut:
    """Ask the node to rotate its key: a ``rotate_key`` command; the node generates the new
    key and proves it over its link, and the old key is retired."""
    row = await state.nodes.request_key_rotation(principal, node_id, source=_source(request))
    return CommandOut.of(row)


@router.put("/{node_id}/config", status_code=status.HTTP_201_CREATED)
async def set_config(
    node_id: NodeId, body: NodeConfigIn, request: Request, principal: CurrentPrincipal, state: State
) -> NodeConfigOut:
    """A new version of the node's desired config, sent as a durable ``config.apply``
    command; the node applies it atomically and rolls back by itself if its link does
    not come back within 60 s."""
    await state.nodes.set_config(principal, node_id, body.config, source=_source(request))
    return NodeConfigOut.of(node_id, await state.nodes.config_history(principal, node_id))


@router.get("/{node_id}/config")
async def get_config(node_id: NodeId, principal: CurrentPrincipal, state: State) -> NodeConfigOut:
    """The desired version, the applied version, and every version with its outcome."""
    return NodeConfigOut.of(node_id, await state.nodes.config_history(principal, node_id))


@router.put("/{node_id}/meters/{meter_id}")
async def attach_meter(
    node_id: NodeId, meter_id: MeterId, request: Request, principal: CurrentPrincipal, state: State
) -> NodeOut:
    """Put a meter behind the node: the node may relay its signed batches."""
    view = await state.nodes.attach_meter(principal, node_id, meter_id, source=_source(request))
    return NodeOut.of(view)


@router.delete("/{node_id}/meters/{meter_id}")
async def detach_meter(
    node_id: NodeId, meter_id: MeterId, request: Request, principal: CurrentPrincipal, state: State
) -> NodeOut:
    view = await state.nodes.detach_meter(principal, node_id, meter_id, source=_source(request))
    return NodeOut.of(view)


@router.post("/{node_id}/commands", status_code=status.HTTP_201_CREATED)
async def issue_command(
    node_id: NodeId, body: CommandIn, request: Request, principal: CurrentPrincipal, state: State
) -> CommandOut:
    """Queue a durable command; it is delivered (and redelivered) until the node has
    persisted it, or it expires."""
    row = await state.nodes.issue_command(
        principal,
        node_id,
        type_=body.type,
        payload=body.payload,
        not_before=body.not_before,
        ttl_s=body.ttl_s,
        source=_source(request),
    )
    return CommandOut.of(row)


@router.get("/{node_id}/commands")
async def list_commands(
    node_id: NodeId,
    principal: CurrentPrincipal,
    state: State,
    limit: Limit = 50,
    offset: Offset = 0,
) -> CommandList:
    rows = await state.nodes.list_commands(principal, node_id, limit=limit, offset=offset)
    return CommandList(items=[CommandOut.of(r) for r in rows], page=page(limit, offset, len(rows)))


@router.get("/{node_id}/commands/{command_id}")
async def get_command(
    node_id: NodeId, command_id: CommandId, principal: CurrentPrincipal, state: State
) -> CommandOut:
    return CommandOut.of(await state.nodes.get_command(principal, node_id, command_id))


class _StarletteLinkSocket:
    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket

    async def send_text(self, text: str) -> None:
        try:
            await self._ws.send_text(text)
        except (WebSocketDisconnect, RuntimeError) as exc:
            raise LinkClosedError from exc

    async def receive_text(self) -> str:
        try:
            message = await self._ws.receive()
        except RuntimeError as exc:
            raise LinkClosedError from exc
        if message["type"] == "websocket.disconnect":
            raise LinkClosedError
        text = message.get("text")
        if text is None:
            data = message.get("bytes") or b""
            # A binary frame is not a frame of this protocol: handed on as is, it fails
            # to parse (or is too large) and closes the link with the documented code.
            return data.decode("utf-8", errors="replace")
        assert isinstance(text, str)
        return text

    async def close(self, code: int, reason: str) -> None:
        await self._ws.close(code=code, reason=reason)


async def node_link(websocket: WebSocket) -> None:
    """``/api/v1/nodes/link``: the node's WebSocket, authenticated by the signed challenge."""
    state: AppState = websocket.app.state.wattx
    await websocket.accept()
    source = websocket.client.host if websocket.client else "unknown"
    await state.node_links.serve(_StarletteLinkSocket(websocket), source=source)
