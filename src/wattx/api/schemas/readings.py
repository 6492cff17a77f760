"""Meter readings: ingest outcomes, stored readings, quarantine, per-epoch energy.

Incoming batches are not described by a pydantic model: the body is parsed
by :mod:`wattx.metering.parsing`, strictly, so that the signature is checked
over exactly what the meter signed. ``docs/reading-format.md`` is the format.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from wattx.api.schemas.common import Page, Problem, StrictModel


class ReadingAlertOut(BaseModel):
    seq: int
    kind: str = Field(description="voltage_out_of_band or frequency_out_of_band")
    value: int
    low: int
    high: int


class IngestOut(BaseModel):
    """What became of one batch."""

    meter_id: str
    accepted: int = Field(description="new readings stored as verified")
    duplicates: int = Field(description="readings already stored identically; not stored again")
    quarantined: int = Field(description="new readings stored for operator review")
    last_seq: int | None = Field(description="the meter's newest stored sequence number")
    alerts: list[ReadingAlertOut]


class BatchesIn(StrictModel):
    batches: list[dict[str, Any]] = Field(
        min_length=1, max_length=100, description="signed reading batches, of any meters"
    )


class BatchOutcome(BaseModel):
    """One batch of a multi-batch post: its result, or the problem that refused it."""

    index: int = Field(description="position of the batch in the request")
    status: int = Field(description="the status a single-batch post would have answered")
    result: IngestOut | None = None
    problem: Problem | None = None


class BatchesOut(BaseModel):
    accepted_batches: int
    rejected_batches: int
    outcomes: list[BatchOutcome]


class ReadingOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    meter_id: str
    seq: int
    ts: datetime
    import_wh: int
    export_wh: int
    power_w: int | None
    voltage_mv: int | None
    frequency_millihz: int | None
    soc_permille: int | None
    status: str = Field(
        description="accepted, quarantined, or rejected (a quarantined reading an operator "
        "refused); a released reading is accepted and keeps its quarantine reason"
    )
    quarantine_reason: str | None
    quarantine_detail: str | None
    via: str
    received_at: datetime
    reviewed_by: str | None = Field(description="the operator who released or rejected it")
    reviewed_at: datetime | None


class ReadingList(BaseModel):
    items: list[ReadingOut]
    page: Page


class AlertOut(BaseModel):
    """A grid-quality alert a stored reading raised, or a settlement that failed for good."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    meter_id: str | None = Field(description="null for a settlement alert")
    seq: int | None = Field(description="the reading that raised it")
    reading_ts: datetime | None
    kind: str = Field(description="voltage_out_of_band, frequency_out_of_band or settlement_failed")
    value: int | None = Field(description="mV or mHz, as in the reading")
    low: int | None
    high: int | None
    raised_at: datetime
    epoch_id: int | None = Field(default=None, description="the epoch a settlement alert is about")
    detail: str | None = Field(default=None, description="why (settlement alerts)")


class AlertList(BaseModel):
    items: list[AlertOut]
    page: Page


class EpochEnergyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    epoch_id: int
    import_wh: int = Field(description="imported in the epoch, every stored interval")
    export_wh: int = Field(description="exported in the epoch, every stored interval")
    verified_export_wh: int = Field(description="exported in intervals that were not quarantined")


class EpochEnergyList(BaseModel):
    meter_id: str
    items: list[EpochEnergyOut]
    page: Page
