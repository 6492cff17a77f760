"""Meter readings: signed batches in (HTTP), stored readings, quarantine and energy out.

Posting readings needs no user token: the meter's Ed25519 signature over the
batch is its authentication (see ``docs/reading-format.md``), and rate limits
apply per client address as for every public route.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.input import StrictJsonRoute, UniqueMembersJsonRoute
from wattx.api.problems import problem_type
from wattx.api.schemas.common import Limit, Offset, Problem, page_of
from wattx.api.schemas.readings import (
    AlertList,
    AlertOut,
    BatchesIn,
    BatchesOut,
    BatchOutcome,
    EpochEnergyList,
    EpochEnergyOut,
    IngestOut,
    ReadingAlertOut,
    ReadingList,
    ReadingOut,
)
from wattx.domain.errors import DomainError
from wattx.metering import AlertKind
from wattx.services.measurement.metering import IngestResult, ReviewDecision
from wattx.services.onchain.settlement import SETTLEMENT_FAILED_ALERT

router = APIRouter(prefix="/api/v1", tags=["readings"], route_class=StrictJsonRoute)

_BATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["version", "meter_id", "readings", "signature"],
    "additionalProperties": False,
    "properties": {
        "version": {"type": "integer", "const": 1},
        "meter_id": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"},
        "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"},
        "readings": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["seq", "ts", "import_wh", "export_wh"],
                "additionalProperties": False,
                "properties": {
                    "seq": {"type": "integer", "minimum": 0},
                    "ts": {"type": "string", "description": "YYYY-MM-DDTHH:MM:SSZ"},
                    "import_wh": {"type": "integer", "minimum": 0},
                    "export_wh": {"type": "integer", "minimum": 0},
                    "power_w": {"type": "integer"},
                    "voltage_mv": {"type": "integer", "minimum": 0},
                    "frequency_millihz": {"type": "integer", "minimum": 0},
                    "soc_permille": {"type": "integer", "minimum": 0, "maximum": 1000},
                },
            },
        },
    },
}


@router.post(
    "/meters/{meter_id}/readings",
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "One signed batch of this meter (docs/reading-format.md)",
            "content": {"application/json": {"schema": _BATCH_SCHEMA}},
        }
    },
)
async def post_readings(meter_id: str, request: Request, state: State) -> IngestOut:
    """Ingest one signed batch of the meter; the signature authenticates it, not a token."""
    result = await state.metering.ingest(
        await request.body(), via="http", expected_meter_id=meter_id
    )
    return _ingest_out(result)


async def post_reading_batches(body: BatchesIn, request: Request, state: State) -> JSONResponse:
    """Ingest batches of several meters; each is validated on its own, all are stored
    in one transaction.

    200 when every batch was accepted, 207 when some were refused: each
    outcome carries the batch's result or its problem (with the status and
    ``code`` a single-batch post would have answered).
    """
    outcomes: list[BatchOutcome] = []
    answers = await state.metering.ingest_many(body.batches, via="http")
    for index, answer in enumerate(answers):
        if isinstance(answer, DomainError):
            outcomes.append(
                BatchOutcome(
                    index=index, status=answer.http_status, problem=_problem(answer, request)
                )
            )
        else:
            outcomes.append(BatchOutcome(index=index, status=200, result=_ingest_out(answer)))
    rejected = sum(1 for o in outcomes if o.problem is not None)
    summary = BatchesOut(
        accepted_batches=len(outcomes) - rejected, rejected_batches=rejected, outcomes=outcomes
    )
    return JSONResponse(summary.model_dump(mode="json"), status_code=207 if rejected else 200)


# Its body's objects name no member twice, as the reading format asks of every batch.
router.add_api_route(
    "/readings/batch",
    post_reading_batches,
    methods=["POST"],
    responses={207: {"model": BatchesOut, "description": "some batches were refused"}},
    route_class_override=UniqueMembersJsonRoute,
)


@router.get("/meters/{meter_id}/readings")
async def list_readings(
    meter_id: str,
    principal: CurrentPrincipal,
    state: State,
    limit: Limit = 100,
    offset: Offset = 0,
) -> ReadingList:
    """The meter's stored readings, newest first (its owner, operators and auditors)."""
    rows = await state.metering.readings(principal, meter_id, limit=limit + 1, offset=offset)
    rows, the_page = page_of(rows, limit, offset)
    return ReadingList(items=[ReadingOut.model_validate(r) for r in rows], page=the_page)


@router.get("/readings/quarantine")
async def list_quarantine(
    state: State,
    meter_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> ReadingList:
    """Quarantined readings for review, most recently received first."""
    rows = await state.metering.quarantine(meter_id=meter_id, limit=limit + 1, offset=offset)
    rows, the_page = page_of(rows, limit, offset)
    return ReadingList(items=[ReadingOut.model_validate(r) for r in rows], page=the_page)


class AlertKindFilter(StrEnum):
    """Every kind of alert the list holds: the readings' and the settlement's."""

    VOLTAGE_OUT_OF_BAND = AlertKind.VOLTAGE_OUT_OF_BAND.value
    FREQUENCY_OUT_OF_BAND = AlertKind.FREQUENCY_OUT_OF_BAND.value
    SETTLEMENT_FAILED = SETTLEMENT_FAILED_ALERT


MeterIdPath = Annotated[str, Path(min_length=1, max_length=64)]
SeqPath = Annotated[int, Path(ge=0, le=2**63 - 1)]


@router.post("/readings/quarantine/{meter_id}/{seq}/release")
async def release_reading(
    meter_id: MeterIdPath, seq: SeqPath, principal: CurrentPrincipal, state: State
) -> ReadingOut:
    """Release a quarantined reading: it becomes accepted and its interval's export counts
    as verified (and can be minted). 409 ``reading_not_quarantined`` if already reviewed."""
    row = await state.metering.review(principal, meter_id, seq, ReviewDecision.RELEASE)
    return ReadingOut.model_validate(row)


@router.post("/readings/quarantine/{meter_id}/{seq}/reject")
async def reject_reading(
    meter_id: MeterIdPath, seq: SeqPath, principal: CurrentPrincipal, state: State
) -> ReadingOut:
    """Reject a quarantined reading: it stays stored as ``rejected`` and is never verified.
    409 ``reading_not_quarantined`` if already reviewed."""
    row = await state.metering.review(principal, meter_id, seq, ReviewDecision.REJECT)
    return ReadingOut.model_validate(row)


@router.get("/alerts")
async def list_alerts(
    state: State,
    meter_id: Annotated[str | None, Query(max_length=64)] = None,
    kind: AlertKindFilter | None = None,
    since: Annotated[
        AwareDatetime | None, Query(description="raised at or after (with a UTC offset)")
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> AlertList:
    """Voltage and frequency alerts raised by readings, most recently raised first."""
    rows = await state.metering.alerts(
        meter_id=meter_id,
        kind=None if kind is None else kind.value,
        since=since,
        limit=limit + 1,
        offset=offset,
    )
    rows, the_page = page_of(rows, limit, offset)
    return AlertList(items=[AlertOut.model_validate(r) for r in rows], page=the_page)


@router.get("/meters/{meter_id}/energy")
async def list_epoch_energy(
    meter_id: str,
    principal: CurrentPrincipal,
    state: State,
    from_epoch: Annotated[int | None, Query(ge=0)] = None,
    to_epoch: Annotated[int | None, Query(ge=0)] = None,
    limit: Limit = 96,
    offset: Offset = 0,
) -> EpochEnergyList:
    """The meter's energy per delivery epoch, newest epoch first."""
    rows = await state.metering.epoch_energy(
        principal,
        meter_id,
        from_epoch=from_epoch,
        to_epoch=to_epoch,
        limit=limit + 1,
        offset=offset,
    )
    rows, the_page = page_of(rows, limit, offset)
    return EpochEnergyList(
        meter_id=meter_id,
        items=[EpochEnergyOut.model_validate(r) for r in rows],
        page=the_page,
    )


def _ingest_out(result: IngestResult) -> IngestOut:
    return IngestOut(
        meter_id=result.meter_id,
        accepted=result.accepted,
        duplicates=result.duplicates,
        quarantined=result.quarantined,
        last_seq=result.last_seq,
        alerts=[
            ReadingAlertOut(seq=a.seq, kind=a.kind.value, value=a.value, low=a.low, high=a.high)
            for a in result.alerts
        ],
    )


def _problem(error: DomainError, request: Request) -> Problem:
    return Problem(
        type=problem_type(error.code),
        title=error.title,
        status=error.http_status,
        detail=error.detail,
        instance=request.url.path,
        code=error.code,
        context=error.context or None,
    )
