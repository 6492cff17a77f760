"""The event stream (server-sent events)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.input import StrictJsonRoute

router = APIRouter(prefix="/api/v1", tags=["events"], route_class=StrictJsonRoute)


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "SSE stream"}},
)
async def stream_events(
    principal: CurrentPrincipal,
    state: State,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=20, pattern=r"^\d+$")
    ] = None,
    access_token: Annotated[
        str | None, Query(description="for EventSource clients that cannot send headers")
    ] = None,
) -> StreamingResponse:
    """Events you may see, as they happen; reconnect with ``Last-Event-ID`` to resume."""
    del access_token  # read by the auth dependency
    stream = state.events.stream(
        user_id=principal.user_id,
        sees_everything=principal.role.sees_everything,
        last_event_id=int(last_event_id) if last_event_id is not None else None,
        keepalive_s=state.settings.sse_keepalive_s,
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
