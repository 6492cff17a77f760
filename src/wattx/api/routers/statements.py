"""The caller's key figures over a period, monthly statements and an epoch's energy flow
(as on the dashboard)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.input import StrictJsonRoute
from wattx.api.schemas.statements import (
    AssetStatementOut,
    EnergyFlowOut,
    KpisOut,
    LineOut,
    StatementOut,
)
from wattx.domain.kpis import FORMULAS, HouseholdKpis
from wattx.services.funds.statements import (
    AssetStatement,
    StatementPeriodError,
    month_bounds,
    parse_month,
)

router = APIRouter(prefix="/api/v1", tags=["statements"], route_class=StrictJsonRoute)


def kpis_out(since: datetime, until: datetime, k: HouseholdKpis) -> KpisOut:
    return KpisOut(
        since=since,
        until=until,
        consumption_wh=k.consumption_wh,
        production_wh=k.production_wh,
        bought_wh=k.bought_wh,
        sold_wh=k.sold_wh,
        paid=k.paid,
        earned=k.earned,
        self_sufficiency_ppm=k.self_sufficiency_ppm,
        self_consumption_ppm=k.self_consumption_ppm,
        savings=k.savings,
        formulas=FORMULAS,
    )


def _side(side: AssetStatement) -> AssetStatementOut:
    return AssetStatementOut(
        opening=side.opening,
        lines=[LineOut(at=x.at, kind=x.kind, ref=x.ref, amount=x.amount) for x in side.lines],
        closing=side.closing,
    )


@router.get("/kpis")
async def get_kpis(
    principal: CurrentPrincipal,
    state: State,
    since: datetime | None = None,
    until: datetime | None = None,
) -> KpisOut:
    """Self-sufficiency, self-consumption and savings against the grid over the epochs
    delivered in ``[since, until)`` (default: this month, UTC)."""
    now = state.clock.now()
    first, end = month_bounds(now.year, now.month)
    since = since or first
    until = until or end
    if since.tzinfo is None or until.tzinfo is None or since >= until:
        raise StatementPeriodError(
            "since and until need a UTC offset and since < until",
            since=since.isoformat(),
            until=until.isoformat(),
        )
    return kpis_out(since, until, await state.statements.kpis(principal.user_id, since, until))


@router.get("/statements/{month}")
async def get_statement(
    month: Annotated[str, Path(max_length=7)], principal: CurrentPrincipal, state: State
) -> StatementOut:
    """The month's statement (``YYYY-MM``), the dashboard's page and CSV as JSON."""
    year, number = parse_month(month)
    found = await state.statements.statement(principal.user_id, year, number)
    return StatementOut(
        month=f"{year:04d}-{number:02d}",
        issued=found.issued,
        credit=_side(found.credit),
        energy=_side(found.energy),
        kpis=kpis_out(found.since, found.until, found.kpis),
    )


@router.get("/energy-flow")
async def get_energy_flow(
    principal: CurrentPrincipal,
    state: State,
    epoch_id: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
) -> EnergyFlowOut:
    """Where the caller's energy came from and went to over one delivery epoch (default:
    the one being delivered now, so far): the figures of the dashboard's live flow."""
    now = state.clock.now()
    current = state.energy_flow.current_epoch(now)
    chosen = current if epoch_id is None else epoch_id
    info = state.market.epoch_info(chosen)  # invalid_epoch beyond the calendar
    flow = await state.energy_flow.flow(principal, chosen)
    return EnergyFlowOut(
        epoch_id=flow.epoch_id,
        start=info.start,
        end=info.end,
        current=chosen == current,
        production_wh=flow.production_wh,
        consumption_wh=flow.consumption_wh,
        bought_wh=flow.bought_wh,
        sold_wh=flow.sold_wh,
        grid_import_wh=flow.grid_import_wh,
        grid_export_wh=flow.grid_export_wh,
        undelivered_sale_wh=flow.undelivered_sale_wh,
        unused_purchase_wh=flow.unused_purchase_wh,
        batteries=flow.batteries,
        battery_soc_wh=flow.battery_soc_wh,
        battery_capacity_wh=flow.battery_capacity_wh,
        battery_soc_ppm=flow.battery_soc_ppm,
    )
