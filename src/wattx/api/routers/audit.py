"""The audit log: every control-plane and admin action, hash-chained."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from wattx.api.auth import State
from wattx.api.input import StrictJsonRoute
from wattx.api.schemas.common import Limit, Offset, page
from wattx.api.schemas.nodes import AuditEntryOut, AuditList, AuditVerifyOut

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], route_class=StrictJsonRoute)


@router.get("")
async def list_audit(
    state: State,
    action: Annotated[str | None, Query(max_length=64)] = None,
    target: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> AuditList:
    """Entries, newest first (operators and auditors)."""
    rows = await state.audit.entries(action=action, target=target, limit=limit, offset=offset)
    return AuditList(items=[AuditEntryOut.of(r) for r in rows], page=page(limit, offset, len(rows)))


@router.get("/verify")
async def verify_audit(state: State) -> AuditVerifyOut:
    """Walk the chain: ``ok`` false names the first entry edited or removed."""
    check = await state.audit.verify()
    return AuditVerifyOut(
        ok=check.ok, checked=check.checked, first_bad_seq=check.first_bad_seq, reason=check.reason
    )
