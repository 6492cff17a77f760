"""Meters: registration, listing, operator activation."""

from __future__ import annotations

from fastapi import APIRouter, status

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.input import StrictJsonRoute
from wattx.api.schemas.common import Limit, Offset, page_of
from wattx.api.schemas.meters import MeterIn, MeterList, MeterOut
from wattx.services.measurement.meters import MeterStatus

router = APIRouter(prefix="/api/v1/meters", tags=["meters"], route_class=StrictJsonRoute)


@router.post("", status_code=status.HTTP_201_CREATED)
async def register_meter(body: MeterIn, principal: CurrentPrincipal, state: State) -> MeterOut:
    """Register a meter with its Ed25519 public key; an operator activates it."""
    row = await state.meters.register(
        principal,
        serial=body.serial,
        zone_id=body.zone_id,
        rated_capacity_w=body.rated_capacity_w,
        public_key=body.public_key,
    )
    return MeterOut.model_validate(row)


@router.get("")
async def list_meters(
    principal: CurrentPrincipal, state: State, limit: Limit = 50, offset: Offset = 0
) -> MeterList:
    rows = await state.meters.list_meters(principal, limit=limit + 1, offset=offset)
    rows, the_page = page_of(rows, limit, offset)
    return MeterList(items=[MeterOut.model_validate(r) for r in rows], page=the_page)


@router.get("/{meter_id}")
async def get_meter(meter_id: str, principal: CurrentPrincipal, state: State) -> MeterOut:
    return MeterOut.model_validate(await state.meters.get_meter(principal, meter_id))


@router.post("/{meter_id}/activate")
async def activate_meter(meter_id: str, state: State) -> MeterOut:
    return MeterOut.model_validate(await state.meters.set_status(meter_id, MeterStatus.ACTIVE))


@router.post("/{meter_id}/deactivate")
async def deactivate_meter(meter_id: str, state: State) -> MeterOut:
    return MeterOut.model_validate(await state.meters.set_status(meter_id, MeterStatus.INACTIVE))
