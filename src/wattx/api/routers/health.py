"""Liveness, readiness and metrics."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from wattx.api.auth import State
from wattx.api.input import StrictJsonRoute
from wattx.store.migrate import is_at_head

router = APIRouter(tags=["operations"], route_class=StrictJsonRoute)


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: bool
    migrations_current: bool


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(state: State) -> JSONResponse:
    """The database answers and carries the newest migration."""
    database = False
    current = False
    try:
        async with state.db.read() as session:
            await session.execute(text("SELECT 1"))
        database = True
        current = await is_at_head(state.db)
    except Exception:  # any failure to reach the database means "not ready"
        current = False
    ready = Readiness(
        status="ready" if database and current else "not_ready",
        database=database,
        migrations_current=current,
    )
    return JSONResponse(ready.model_dump(), status_code=200 if database and current else 503)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, state: State) -> Response:
    """Prometheus text exposition (see ``metrics_token`` and ``production`` in the settings)."""
    token = state.settings.metrics_token
    if token is not None:
        offered = request.headers.get("authorization", "").encode()
        expected = f"Bearer {token.get_secret_value()}".encode()
        allowed = hmac.compare_digest(offered, expected)
    else:
        allowed = not state.settings.production
    if not allowed:
        # Not there for whoever may not read it.
        raise HTTPException(status_code=404, detail="Not Found")
    return Response(generate_latest(state.registry), media_type=CONTENT_TYPE_LATEST)
