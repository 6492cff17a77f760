"""Devices, device commands and trades' physical delivery."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt

from wattx.api.schemas.common import Page, StrictModel
from wattx.devices.lifecycle import DeliveryState
from wattx.devices.model import DeviceKind, DeviceProtocol

_ID = r"^[A-Za-z0-9._:-]+$"


class DeviceIn(StrictModel):
    name: str = Field(min_length=1, max_length=100)
    kind: DeviceKind
    protocol: DeviceProtocol = DeviceProtocol.MQTT
    meter_id: str = Field(min_length=1, max_length=32)
    node_id: str | None = Field(default=None, min_length=1, max_length=32)
    rated_power_w: StrictInt = Field(description="W")
    capacity_wh: StrictInt = Field(default=0, description="Wh; 0 for kinds without storage")
    reserve_wh: StrictInt = Field(default=0, description="Wh the owner keeps; never planned away")
    soc_wh: StrictInt | None = Field(default=None, description="state of charge, Wh")


class DevicePatch(StrictModel):
    reserve_wh: StrictInt | None = None
    soc_wh: StrictInt | None = None


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    owner_id: str
    meter_id: str
    node_id: str | None
    name: str
    kind: DeviceKind
    protocol: DeviceProtocol
    rated_power_w: int
    capacity_wh: int
    reserve_wh: int
    soc_wh: int | None
    status: str = Field(description="active, at_risk (a command went unacknowledged) or removed")
    created_at: datetime
    updated_at: datetime


class DeviceList(BaseModel):
    items: list[DeviceOut]
    page: Page


class DeviceCommandIn(StrictModel):
    id: str = Field(min_length=1, max_length=64, pattern=_ID, description="the caller's id")
    type: str = Field(description="lock, unlock, transfer.start, transfer.stop or schedule")
    payload: dict[str, Any] = Field(default_factory=dict, max_length=32)
    expires_at: AwareDatetime


class DeviceCommandOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    device_id: str
    trade_id: str | None
    type: str
    status: str = Field(description="sent, acked or failed")
    issued_at: datetime
    expires_at: datetime
    acked_at: datetime | None
    detail: str | None


class DeviceCommandList(BaseModel):
    items: list[DeviceCommandOut]
    page: Page


class DeliveryOut(BaseModel):
    trade_id: str
    epoch_id: int
    buyer: str
    seller: str
    state: DeliveryState
    qty_wh: int
    contracted_wh: int
    delivered_wh: int | None = Field(description="what the meters proved; null until measured")
    refund: int | None
    imbalance_charge: int | None
    seller_export_wh: int | None
    buyer_import_wh: int | None
    reason: str | None = Field(
        default=None, description="why it was refunded before measurement, or a seller's shortfall"
    )
    updated_at: datetime


class DeliveryList(BaseModel):
    items: list[DeliveryOut]
    page: Page


class TelemetryIn(StrictModel):
    epoch_id: int = Field(ge=0, le=2**62, description="the delivery epoch reported on")
    export_wh: int | None = Field(
        default=None, ge=0, le=2**53, description="energy the device exported"
    )
    import_wh: int | None = Field(
        default=None, ge=0, le=2**53, description="energy the device imported"
    )
    fault: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="the device tripped or faulted (a short description); refunds its trades",
    )


class TelemetryOut(BaseModel):
    device_id: str
    epoch_id: int
    refunded: list[str] = Field(description="trades refunded because of the reported fault")


_MAX_SLOTS = 192
_Series = Field(min_length=1, max_length=_MAX_SLOTS)


class ScheduleIn(StrictModel):
    starts_at: AwareDatetime = Field(description="when the first slot begins (UTC)")
    slot_s: int = Field(default=900, ge=60, le=3_600)
    pv_wh: list[int] = _Series
    load_wh: list[int] = _Series
    import_price: list[int] = _Series
    export_price: list[int] = _Series
    final_soc_min_wh: int | None = Field(default=None, ge=0)


class ScheduleSlotOut(BaseModel):
    starts_at: datetime
    charge_wh: int
    discharge_wh: int
    import_wh: int
    export_wh: int
    soc_wh: int


class ScheduleOut(BaseModel):
    device_id: str
    slot_s: int
    cost_micro: int = Field(description="grid cost of the schedule, micro-units")
    slots: list[ScheduleSlotOut]
