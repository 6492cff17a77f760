"""Meters."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from wattx.api.schemas.common import Page, StrictModel
from wattx.services.measurement.meters import MeterStatus


class MeterIn(StrictModel):
    serial: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    zone_id: str = Field(min_length=1, max_length=40)
    rated_capacity_w: StrictInt = Field(gt=0, le=10**9)
    public_key: str = Field(
        min_length=1, max_length=100, description="Ed25519 public key, hex or base64"
    )


class MeterOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    serial: str
    owner_id: str
    zone_id: str
    rated_capacity_w: int
    public_key: str = Field(description="hex")
    status: MeterStatus
    created_at: datetime


class MeterList(BaseModel):
    items: list[MeterOut]
    page: Page
