"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
import hmac
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from wattx.api.auth import State
from wattx.api.input import StrictJsonRoute
from wattx.api.state import AppState
from wattx.bus.redis import RedisBus
from wattx.store import space
from wattx.store.migrate import is_at_head

router = APIRouter(tags=["operations"], route_class=StrictJsonRoute)


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: bool
    migrations_current: bool
    storage_writable: bool
    redis: bool | None


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


# A check that takes longer than this counts as failed.
_CHECK_TIMEOUT_S = 5.0
# A write that failed on storage this recently, with none committed since,
# makes the service not ready.
_WRITE_FAILURE_WINDOW_S = 30.0


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(state: State) -> JSONResponse:
    """Ready when the database answers and carries the newest migration, no write has
    failed on storage lately (unreachable, disk full) without one committing since,
    the disks of the SQLite database and the embedded chain's journal are not full,
    and Redis, when configured, answers and carries the event subscription."""
    database, current = await _database_checks(state)
    writable = (
        database
        and not state.db.write_failing(_WRITE_FAILURE_WINDOW_S)
        and space.space_left(_local_storage(state))
    )
    redis = await _redis_check(state)
    ok = database and current and writable and redis is not False
    ready = Readiness(
        status="ready" if ok else "not_ready",
        database=database,
        migrations_current=current,
        storage_writable=writable,
        redis=redis,
    )
    return JSONResponse(ready.model_dump(), status_code=200 if ok else 503)


def _local_storage(state: AppState) -> list[Path]:
    """Directories the service writes its records to: the SQLite database's, and the data
    directory when the chain is the embedded one (its journal)."""
    found = []
    if state.db.sqlite_dir is not None:
        found.append(state.db.sqlite_dir)
    if state.settings.chain_rpc_url is None:
        found.append(state.settings.data_dir)
    return found


async def _database_checks(state: AppState) -> tuple[bool, bool]:
    async def check() -> tuple[bool, bool]:
        async with state.db.read() as session:
            await session.execute(text("SELECT 1"))
        return True, await is_at_head(state.db)

    try:
        async with asyncio.timeout(_CHECK_TIMEOUT_S):
            return await check()
    except Exception:  # any failure to reach the database means "not ready"
        return False, False


async def _redis_check(state: AppState) -> bool | None:
    """``None`` without Redis; else whether it answers and events flow from it."""
    bus = state.bus
    if not isinstance(bus, RedisBus):
        return None
    try:
        async with asyncio.timeout(_CHECK_TIMEOUT_S):
            answers = await bus.ping()
    except TimeoutError:
        return False
    return answers and bus.listening


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
