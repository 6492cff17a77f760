"""Zones, tariffs and zone-to-zone rates."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, StrictInt

from wattx.api.schemas.common import StrictModel
from wattx.market import Mechanism


class BandIn(StrictModel):
    start_hour: StrictInt = Field(ge=0, le=23)
    feed_in: StrictInt = Field(ge=0, le=10**12, description="micro-units per kWh")
    retail: StrictInt = Field(ge=0, le=10**12, description="micro-units per kWh")


class ZoneIn(StrictModel):
    id: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str = Field(min_length=1, max_length=100)
    tariff: list[BandIn] = Field(min_length=1, max_length=24)
    position_km: StrictInt = Field(default=0, ge=-100_000, le=100_000)
    neighbours: list[str] = Field(default_factory=list, max_length=100)
    import_capacity_wh: StrictInt | None = Field(
        default=None, le=10**15, description="Wh per epoch; negative: `negative_capacity`"
    )
    export_capacity_wh: StrictInt | None = Field(
        default=None, le=10**15, description="Wh per epoch; negative: `negative_capacity`"
    )
    mechanism: Mechanism = Mechanism.CONTINUOUS
    parent: str | None = Field(
        default=None, min_length=1, max_length=40, description="the zone above in the grid tree"
    )


class ZoneUpdate(StrictModel):
    name: str = Field(min_length=1, max_length=100)
    tariff: list[BandIn] = Field(min_length=1, max_length=24)
    position_km: StrictInt = Field(default=0, ge=-100_000, le=100_000)
    neighbours: list[str] = Field(default_factory=list, max_length=100)
    import_capacity_wh: StrictInt | None = Field(
        default=None, le=10**15, description="Wh per epoch; negative: `negative_capacity`"
    )
    export_capacity_wh: StrictInt | None = Field(
        default=None, le=10**15, description="Wh per epoch; negative: `negative_capacity`"
    )
    mechanism: Mechanism = Mechanism.CONTINUOUS
    parent: str | None = Field(
        default=None, min_length=1, max_length=40, description="the zone above in the grid tree"
    )


class BandOut(BaseModel):
    start_hour: int
    feed_in: int
    retail: int


class ZoneOut(BaseModel):
    id: str
    name: str
    tariff: list[BandOut]
    position_km: int
    neighbours: list[str]
    import_capacity_wh: int | None
    export_capacity_wh: int | None
    mechanism: Mechanism
    parent: str | None
    created_at: datetime


class ZoneRateOut(BaseModel):
    seller_zone: str
    buyer_zone: str
    wheeling_per_kwh: int = Field(description="micro-units per kWh sold")
    loss_bps: int


class ZoneRatesOut(BaseModel):
    fee_bps: int
    rates: list[ZoneRateOut]
