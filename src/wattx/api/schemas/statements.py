"""A participant's key figures and monthly statement (integers: Wh, micro-units, ppm)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class KpisOut(BaseModel):
    since: datetime
    until: datetime
    consumption_wh: int = Field(description="energy the caller's meters saw enter")
    production_wh: int = Field(description="verified export of the caller's meters")
    bought_wh: int
    sold_wh: int
    paid: int = Field(description="micro-units paid for local purchases, fees included")
    earned: int = Field(description="micro-units earned by local sales, after fees")
    self_sufficiency_ppm: int | None = Field(description="null when nothing was consumed")
    self_consumption_ppm: int | None = Field(description="null when nothing was produced")
    savings: int = Field(description="micro-units saved against the grid's tariffs")
    formulas: dict[str, str]


class LineOut(BaseModel):
    at: datetime
    kind: str
    ref: str | None
    amount: int


class AssetStatementOut(BaseModel):
    opening: int
    lines: list[LineOut]
    closing: int


class StatementOut(BaseModel):
    month: str
    issued: bool = Field(description="true once the month has ended: the figures are final")
    credit: AssetStatementOut = Field(description="micro-units")
    energy: AssetStatementOut = Field(description="Wh of energy tokens")
    kpis: KpisOut


class EnergyFlowOut(BaseModel):
    """The caller's energy over one delivery epoch, in Wh, as ``/me`` shows it."""

    epoch_id: int
    start: datetime
    end: datetime
    current: bool = Field(description="true while the epoch is being delivered: figures so far")
    production_wh: int = Field(description="verified export of the caller's meters")
    consumption_wh: int = Field(description="import of the caller's meters")
    bought_wh: int = Field(description="bought on the local market, after the loss")
    sold_wh: int = Field(description="sold on the local market")
    grid_import_wh: int = Field(description="max(0, consumption - bought)")
    grid_export_wh: int = Field(description="max(0, production - sold)")
    undelivered_sale_wh: int = Field(description="max(0, sold - production)")
    unused_purchase_wh: int = Field(description="max(0, bought - consumption)")
    batteries: int
    battery_soc_wh: int | None = Field(description="null: no battery reported its charge")
    battery_capacity_wh: int
    battery_soc_ppm: int | None
