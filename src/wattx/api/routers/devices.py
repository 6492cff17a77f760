"""Devices, their commands, and trades' physical delivery."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.input import StrictJsonRoute
from wattx.api.schemas.common import Limit, Offset, page_of
from wattx.api.schemas.devices import (
    DeliveryList,
    DeliveryOut,
    DeviceCommandIn,
    DeviceCommandList,
    DeviceCommandOut,
    DeviceIn,
    DeviceList,
    DeviceOut,
    DevicePatch,
    ScheduleIn,
    ScheduleOut,
    ScheduleSlotOut,
    TelemetryIn,
    TelemetryOut,
)
from wattx.devices.scheduling.dayahead import Forecast
from wattx.services.measurement.delivery import DeviceSpec
from wattx.store.models import TradeRow
from wattx.store.models_devices import TradeDeliveryRow

router = APIRouter(prefix="/api/v1", tags=["devices"], route_class=StrictJsonRoute)

DeviceId = Annotated[str, Path(min_length=1, max_length=64)]
TradeId = Annotated[str, Path(min_length=1, max_length=64)]


@router.post("/devices", status_code=status.HTTP_201_CREATED)
async def register_device(body: DeviceIn, principal: CurrentPrincipal, state: State) -> DeviceOut:
    """Register a device behind one of your meters (and, optionally, the meter's node)."""
    row = await state.delivery.register(
        principal,
        DeviceSpec(
            name=body.name,
            kind=body.kind,
            protocol=body.protocol,
            meter_id=body.meter_id,
            node_id=body.node_id,
            rated_power_w=body.rated_power_w,
            capacity_wh=body.capacity_wh,
            reserve_wh=body.reserve_wh,
            soc_wh=body.soc_wh,
        ),
    )
    return DeviceOut.model_validate(row)


@router.get("/devices")
async def list_devices(
    principal: CurrentPrincipal, state: State, limit: Limit = 50, offset: Offset = 0
) -> DeviceList:
    rows = await state.delivery.list_devices(principal, limit=limit + 1, offset=offset)
    rows, the_page = page_of(rows, limit, offset)
    return DeviceList(items=[DeviceOut.model_validate(r) for r in rows], page=the_page)


@router.get("/devices/at-risk")
async def devices_at_risk(state: State, limit: Limit = 50, offset: Offset = 0) -> DeviceList:
    """Devices whose last command went unacknowledged or was refused (operators)."""
    rows = await state.delivery.at_risk(limit=limit + 1, offset=offset)
    rows, the_page = page_of(rows, limit, offset)
    return DeviceList(items=[DeviceOut.model_validate(r) for r in rows], page=the_page)


@router.get("/devices/{device_id}")
async def get_device(device_id: DeviceId, principal: CurrentPrincipal, state: State) -> DeviceOut:
    return DeviceOut.model_validate(await state.delivery.get_device(principal, device_id))


@router.patch("/devices/{device_id}")
async def update_device(
    device_id: DeviceId, body: DevicePatch, principal: CurrentPrincipal, state: State
) -> DeviceOut:
    """Set the reserve the plans keep, or report the state of charge."""
    row = await state.delivery.update(
        principal, device_id, reserve_wh=body.reserve_wh, soc_wh=body.soc_wh
    )
    return DeviceOut.model_validate(row)


@router.delete("/devices/{device_id}")
async def remove_device(
    device_id: DeviceId, principal: CurrentPrincipal, state: State
) -> DeviceOut:
    return DeviceOut.model_validate(await state.delivery.remove(principal, device_id))


@router.post("/devices/{device_id}/commands", status_code=status.HTTP_201_CREATED)
async def send_command(
    device_id: DeviceId, body: DeviceCommandIn, principal: CurrentPrincipal, state: State
) -> DeviceCommandOut:
    """Send a command to the device over its node; acknowledged by the device."""
    row = await state.delivery.send_command(
        principal,
        device_id,
        command_id=body.id,
        type_=body.type,
        payload=body.payload,
        expires_at=body.expires_at,
    )
    return DeviceCommandOut.model_validate(row)


@router.get("/devices/{device_id}/commands")
async def list_commands(
    device_id: DeviceId,
    principal: CurrentPrincipal,
    state: State,
    limit: Limit = 50,
    offset: Offset = 0,
) -> DeviceCommandList:
    rows = await state.delivery.list_commands(principal, device_id, limit=limit + 1, offset=offset)
    rows, the_page = page_of(rows, limit, offset)
    return DeviceCommandList(
        items=[DeviceCommandOut.model_validate(r) for r in rows], page=the_page
    )


@router.get("/deliveries")
async def list_deliveries(
    principal: CurrentPrincipal,
    state: State,
    epoch_id: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> DeliveryList:
    """Physical trades' delivery: state, and once measured what the meters proved."""
    pairs = await state.delivery.deliveries(
        principal, epoch_id=epoch_id, limit=limit + 1, offset=offset
    )
    pairs, the_page = page_of(pairs, limit, offset)
    return DeliveryList(
        items=[_delivery_out(d, t) for d, t in pairs],
        page=the_page,
    )


def _delivery_out(d: TradeDeliveryRow, t: TradeRow) -> DeliveryOut:
    return DeliveryOut(
        trade_id=d.trade_id,
        epoch_id=d.epoch_id,
        buyer=t.buyer,
        seller=t.seller,
        state=d.state,
        qty_wh=t.qty_wh,
        contracted_wh=d.contracted_wh,
        delivered_wh=d.delivered_wh,
        refund=d.refund,
        imbalance_charge=d.imbalance_charge,
        seller_export_wh=d.seller_export_wh,
        buyer_import_wh=d.buyer_import_wh,
        reason=d.reason,
        updated_at=d.updated_at,
    )


@router.post("/deliveries/{trade_id}/cancel")
async def cancel_delivery(
    trade_id: TradeId, principal: CurrentPrincipal, state: State
) -> DeliveryOut:
    """The seller (or an operator) cancels a delivery that is not transferring yet: the
    buyer is refunded and the seller pays the imbalance charge when the epoch settles."""
    await state.delivery.cancel(principal, trade_id)
    pairs = await state.delivery.deliveries(
        principal, epoch_id=None, limit=1, offset=0, trade_id=trade_id
    )
    return _delivery_out(*pairs[0])


@router.post("/devices/{device_id}/telemetry")
async def device_telemetry(
    device_id: DeviceId, body: TelemetryIn, principal: CurrentPrincipal, state: State
) -> TelemetryOut:
    """The device's energy for an epoch (checked against its meter) and its faults."""
    refunded = await state.delivery.telemetry(
        principal,
        device_id,
        epoch_id=body.epoch_id,
        export_wh=body.export_wh,
        import_wh=body.import_wh,
        fault=body.fault,
    )
    return TelemetryOut(device_id=device_id, epoch_id=body.epoch_id, refunded=refunded)


@router.put("/devices/{device_id}/schedule")
async def set_schedule(
    device_id: DeviceId, body: ScheduleIn, principal: CurrentPrincipal, state: State
) -> ScheduleOut:
    """A battery's day-ahead schedule (a linear program solved with HiGHS) from your
    forecast; delivery plans then ask no more of it than the schedule does."""
    schedule = await state.delivery.set_schedule(
        principal,
        device_id,
        starts_at=body.starts_at,
        forecast=Forecast(
            pv_wh=body.pv_wh,
            load_wh=body.load_wh,
            import_price=body.import_price,
            export_price=body.export_price,
            slot_s=body.slot_s,
        ),
        final_soc_min_wh=body.final_soc_min_wh,
    )
    return ScheduleOut(
        device_id=device_id,
        slot_s=body.slot_s,
        cost_micro=schedule.cost_micro,
        slots=[
            ScheduleSlotOut(
                starts_at=body.starts_at + timedelta(seconds=k * body.slot_s),
                charge_wh=s.charge_wh,
                discharge_wh=s.discharge_wh,
                import_wh=s.import_wh,
                export_wh=s.export_wh,
                soc_wh=s.soc_wh,
            )
            for k, s in enumerate(schedule.slots)
        ],
    )
