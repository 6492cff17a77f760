"""The operator's console (auditors read the same pages, without the buttons):
admission, participants, meters, quarantine review, alerts, zones, epochs, edge
nodes, devices at risk, trades' delivery states and the audit trail."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.input import StrictJsonRoute
from wattx.devices.lifecycle import DeliveryState
from wattx.domain import TimeOfUseBand
from wattx.domain.errors import DomainError
from wattx.market import ZoneRate
from wattx.services.funds.deposit_requests import DepositRequestStatus
from wattx.services.measurement.metering import ReviewDecision
from wattx.services.measurement.meters import MeterStatus
from wattx.services.principal import Principal, Role, UserStatus
from wattx.services.trading.zones import spec_from_row
from wattx.web.forms import FieldError, refusal, scaled, scaled_or_zero, whole_number
from wattx.web.render import page
from wattx.web.session import require_csrf

router = APIRouter(
    prefix="/operator",
    include_in_schema=False,
    dependencies=[Depends(require_csrf)],
    route_class=StrictJsonRoute,
)

EpochPath = Annotated[int, Path(ge=0, le=10**12)]
SeqPath = Annotated[int, Path(ge=0, le=2**63 - 1)]


async def _participants(
    request: Request,
    state: State,
    *,
    errors: dict[str, str],
    done: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    pending = await state.accounts.list_users(status=UserStatus.PENDING, limit=100, offset=0)
    everyone = await state.accounts.list_users(status=None, limit=200, offset=0)
    deposits = await state.wallet.requests.listed(
        status=DepositRequestStatus.PENDING, limit=100, offset=0
    )
    names = {u.id: u.display_name for u in everyone}
    return page(
        request,
        "operator_users.html",
        {
            "pending": pending,
            "users": everyone,
            "deposits": deposits,
            "names": names,
            "errors": errors,
            "done": done,
        },
        status_code=status_code,
    )


@router.get("", response_class=HTMLResponse)
async def participants(request: Request, state: State) -> HTMLResponse:
    """The admission queue, then every participant."""
    return await _participants(request, state, errors={})


@router.post("/users/{user_id}/admission")
async def admission(user_id: str, request: Request, state: State) -> Response:
    form = await request.form()
    decision = str(form.get("status", ""))
    if decision not in (UserStatus.ADMITTED.value, UserStatus.SUSPENDED.value):
        return await _participants(
            request, state, errors={user_id: "Choose admit or suspend."}, status_code=422
        )
    role_text = str(form.get("role", ""))
    role = Role(role_text) if role_text in {r.value for r in Role} else None
    await state.accounts.set_admission(user_id, status=UserStatus(decision), role=role)
    return RedirectResponse("/operator", status_code=303)


@router.post("/users/{user_id}/deposit")
async def deposit(user_id: str, request: Request, state: State) -> Response:
    """Credit money the operator received for this participant (minted on chain)."""
    form = await request.form()
    try:
        amount = scaled("amount", str(form.get("amount", "")), 6, "currency units")
    except FieldError as exc:
        return await _participants(request, state, errors={user_id: exc.message}, status_code=422)
    try:
        await state.wallet.deposit_credit(user_id, amount)
    except DomainError as exc:
        return await _participants(
            request, state, errors={user_id: exc.detail}, status_code=exc.http_status
        )
    return RedirectResponse("/operator", status_code=303)


RequestPath = Annotated[str, Path(min_length=1, max_length=32)]


@router.post("/deposit-requests/{request_id}/{decision}", response_class=HTMLResponse)
async def decide_deposit_request(
    request_id: RequestPath,
    decision: Annotated[str, Path(pattern="^(approve|reject)$")],
    request: Request,
    principal: CurrentPrincipal,
    state: State,
) -> Response:
    """Approve a participant's deposit request (the operator's deposit, as
    ``POST /api/v1/admin/deposit-requests/{id}/approve``) or reject it."""
    requests = state.wallet.requests
    source = request.client.host if request.client else "unknown"
    try:
        if decision == "approve":
            found = await requests.approve(principal, request_id, source=source)
        else:
            found = await requests.reject(principal, request_id, source=source)
    except DomainError as exc:
        return await _participants(
            request,
            state,
            errors={"deposits": f"{exc.detail} ({exc.code})"},
            status_code=exc.http_status,
        )
    done = f"Deposit request {found.reference!r} {found.status.value}."
    return await _participants(request, state, errors={}, done=done)


@router.get("/meters", response_class=HTMLResponse)
async def meters(request: Request, principal: CurrentPrincipal, state: State) -> HTMLResponse:
    rows = await state.meters.list_meters(principal, limit=200, offset=0)
    return page(request, "operator_meters.html", {"meters": rows})


@router.post("/meters/{meter_id}/activate")
async def activate_meter(meter_id: str, state: State) -> Response:
    await state.meters.set_status(meter_id, MeterStatus.ACTIVE)
    return RedirectResponse("/operator/meters", status_code=303)


@router.post("/meters/{meter_id}/deactivate")
async def deactivate_meter(meter_id: str, state: State) -> Response:
    await state.meters.set_status(meter_id, MeterStatus.INACTIVE)
    return RedirectResponse("/operator/meters", status_code=303)


@router.get("/quarantine", response_class=HTMLResponse)
async def quarantine(request: Request, state: State) -> HTMLResponse:
    rows = await state.metering.quarantine(meter_id=None, limit=100, offset=0)
    return page(request, "operator_quarantine.html", {"readings": rows})


@router.post("/quarantine/{meter_id}/{seq}/release")
async def release(
    meter_id: str, seq: SeqPath, principal: CurrentPrincipal, state: State
) -> Response:
    await state.metering.review(principal, meter_id, seq, ReviewDecision.RELEASE)
    return RedirectResponse("/operator/quarantine", status_code=303)


@router.post("/quarantine/{meter_id}/{seq}/reject")
async def reject(
    meter_id: str, seq: SeqPath, principal: CurrentPrincipal, state: State
) -> Response:
    await state.metering.review(principal, meter_id, seq, ReviewDecision.REJECT)
    return RedirectResponse("/operator/quarantine", status_code=303)


@router.get("/alerts", response_class=HTMLResponse)
async def alerts(request: Request, state: State) -> HTMLResponse:
    rows = await state.metering.alerts(meter_id=None, kind=None, since=None, limit=100, offset=0)
    return page(request, "operator_alerts.html", {"alerts": rows})


@router.get("/nodes", response_class=HTMLResponse)
async def nodes(request: Request, principal: CurrentPrincipal, state: State) -> HTMLResponse:
    """Every edge node with its health, last heartbeat and relay counters."""
    views = await state.nodes.list_nodes(principal, limit=500, offset=0)
    return page(request, "operator_nodes.html", {"nodes": views})


@router.get("/devices", response_class=HTMLResponse)
async def devices_at_risk(request: Request, state: State) -> HTMLResponse:
    """Devices whose last command went unacknowledged or was refused."""
    rows = await state.delivery.at_risk(limit=200, offset=0)
    return page(request, "operator_devices.html", {"devices": rows})


DELIVERY_STATES = tuple(s.value for s in DeliveryState)


StateFilter = Annotated[str | None, Query(alias="state", max_length=20)]


async def _deliveries_context(
    state: State, principal: Principal, delivery_state: str | None
) -> dict[str, Any]:
    chosen = delivery_state if delivery_state in DELIVERY_STATES else None
    pairs = await state.delivery.deliveries(
        principal, epoch_id=None, limit=200, offset=0, state=chosen, newest_first=True
    )
    at_risk = await state.delivery.at_risk(limit=500, offset=0)
    owners = {d.owner_id for d in at_risk}
    return {
        "rows": [
            {"delivery": d, "trade": t, "at_risk": t.buyer in owners or t.seller in owners}
            for d, t in pairs
        ],
        "states": DELIVERY_STATES,
        "chosen": chosen,
        "unknown_state": delivery_state if delivery_state and chosen is None else None,
        "counts": await state.delivery.summary(),
        "at_risk": at_risk,
        "as_of": state.clock.now(),
    }


@router.get("/deliveries", response_class=HTMLResponse)
async def deliveries(
    request: Request,
    principal: CurrentPrincipal,
    state: State,
    delivery_state: StateFilter = None,
) -> HTMLResponse:
    """The newest physical trades' delivery state, filtered by state through the URL,
    with the trades whose buyer or seller has a device at risk marked; live on
    ``delivery.state`` and ``device.state``."""
    context = await _deliveries_context(state, principal, delivery_state)
    return page(request, "operator_deliveries.html", context)


@router.get("/deliveries/live", response_class=HTMLResponse)
async def deliveries_live(
    request: Request,
    principal: CurrentPrincipal,
    state: State,
    delivery_state: StateFilter = None,
) -> HTMLResponse:
    context = await _deliveries_context(state, principal, delivery_state)
    return page(request, "_deliveries_live.html", context)


@router.get("/audit", response_class=HTMLResponse)
async def audit_trail(request: Request, state: State) -> HTMLResponse:
    """The newest audit entries and the result of walking the hash chain."""
    rows = await state.audit.entries(action=None, target=None, limit=200, offset=0)
    check = await state.audit.verify()
    return page(request, "operator_audit.html", {"entries": rows, "check": check})


MAX_BANDS = 24


async def _zones_page(
    request: Request,
    state: State,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    done: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows = await state.zones.list_zones()
    listed = [
        {
            "row": row,
            "bands": json.loads(row.tariff_bands),
            "neighbours": json.loads(row.neighbours),
        }
        for row in rows
    ]
    return page(
        request,
        "operator_zones.html",
        {
            "zones": listed,
            "rates": _rate_rows(state),
            "errors": errors or {},
            "values": values or {},
            "done": done,
        },
        status_code=status_code,
    )


def _rate_rows(state: State) -> list[tuple[str, str, ZoneRate]]:
    """Every ordered pair of zones and the governed rate of the first epoch open now."""
    market = state.market
    table = market.rates_for(market.first_open_epoch(state.clock.now()))
    zones = market.zones
    return [
        (seller.id, buyer.id, table.rate(seller, buyer))
        for seller in zones.values()
        for buyer in zones.values()
    ]


@router.get("/zones", response_class=HTMLResponse)
async def zones(request: Request, state: State) -> HTMLResponse:
    """Zones with their tariffs and link capacities, editable by an operator through the
    same service as ``PUT /api/v1/zones/...``, and the governed rates between them (read
    only: changing them is a governance proposal)."""
    return await _zones_page(request, state)


def _capacity(field: str, text: str) -> int | None:
    """A link capacity in kWh per epoch; blank is unlimited."""
    return None if not text else scaled_or_zero(field, text, 3, "kWh")


def _bands_of(zone_id: str, form: dict[str, str]) -> list[TimeOfUseBand]:
    """Band rows of the tariff form; a row with an empty hour is left out."""
    bands = []
    for i in range(MAX_BANDS):
        hour = form.get(f"{zone_id}-hour-{i}", "")
        if not hour:
            continue
        field = f"{zone_id}-tariff"
        start = whole_number(field, hour, low=0, high=23, what="a starting hour")
        feed_in = scaled_or_zero(field, form.get(f"{zone_id}-feed_in-{i}", ""), 6, "per kWh")
        retail = scaled_or_zero(field, form.get(f"{zone_id}-retail-{i}", ""), 6, "per kWh")
        if feed_in > retail:
            raise FieldError(field, f"From {start}:00 the feed-in tariff is above retail.")
        bands.append(TimeOfUseBand(start, feed_in, retail))
    if not bands:
        raise FieldError(f"{zone_id}-tariff", "A tariff needs at least one band.")
    return sorted(bands, key=lambda b: b.start_hour)


@router.post("/zones/{zone_id}", response_class=HTMLResponse)
async def edit_zone(
    zone_id: Annotated[str, Path(max_length=40)], request: Request, state: State
) -> Response:
    """Change a zone's name, tariff and link capacities, as ``PUT /api/v1/zones/{id}``.
    A mistake is shown next to its field and changes nothing."""
    row = await state.zones.get_zone(zone_id)
    form = {k: str(v).strip() for k, v in (await request.form()).items()}
    name_field = f"{zone_id}-name"
    try:
        name = form.get(name_field, "")
        if not 1 <= len(name) <= 100:
            raise FieldError(name_field, "Give a name of 1 to 100 characters.")
        spec = replace(
            spec_from_row(row),
            name=name,
            bands=_bands_of(zone_id, form),
            import_capacity_wh=_capacity(
                f"{zone_id}-import_capacity", form.get(f"{zone_id}-import_capacity", "")
            ),
            export_capacity_wh=_capacity(
                f"{zone_id}-export_capacity", form.get(f"{zone_id}-export_capacity", "")
            ),
        )
        await state.zones.update_zone(spec)
    except (FieldError, DomainError) as exc:
        refused = refusal(exc, {}, f"{zone_id}-tariff")
        return await _zones_page(
            request, state, errors=refused.errors, values=form, status_code=refused.status_code
        )
    return await _zones_page(request, state, done=f"Zone {zone_id} saved.")


async def _trades_context(state: State, principal: Principal) -> dict[str, Any]:
    """The newest trades of every zone: fetched again on each ``trade.executed``."""
    trades = await state.market.list_trades(principal, zone=None, epoch_id=None, limit=20, offset=0)
    return {"trades": trades, "as_of": state.clock.now()}


async def _epochs_context(state: State) -> dict[str, Any]:
    market = state.market
    closed = await market.closed_epochs(limit=50, offset=0)
    batches = {row.epoch_id: row for row in await state.public_ledger.epochs(limit=200, offset=0)}
    await market.refresh_view()
    open_epochs = sorted({o.epoch_id for o in market.open_orders()})
    now = state.clock.now()
    return {
        "closed": [(row, batches.get(row.id)) for row in closed],
        "open_epochs": [market.epoch_info(e) for e in open_epochs],
        "current": market.epoch_info(market.schedule.epoch_id_at(now)),
        "as_of": now,
    }


@router.get("/epochs", response_class=HTMLResponse)
async def epochs(request: Request, principal: CurrentPrincipal, state: State) -> HTMLResponse:
    """The newest trades, the epochs with open orders and the closed ones with their
    settlement batch (live)."""
    context = await _epochs_context(state) | await _trades_context(state, principal)
    return page(request, "operator_epochs.html", context)


@router.get("/epochs/live", response_class=HTMLResponse)
async def epochs_live(request: Request, state: State) -> HTMLResponse:
    return page(request, "_epochs_live.html", await _epochs_context(state))


@router.get("/epochs/trades/live", response_class=HTMLResponse)
async def epoch_trades_live(
    request: Request, principal: CurrentPrincipal, state: State
) -> HTMLResponse:
    return page(request, "_epoch_trades_live.html", await _trades_context(state, principal))


@router.post("/epochs/{epoch_id}/close")
async def close_epoch(epoch_id: EpochPath, state: State) -> Response:
    await state.market.close_gate(epoch_id, forced=True)
    return RedirectResponse("/operator/epochs", status_code=303)


@router.post("/epochs/{epoch_id}/settle")
async def settle_epoch(epoch_id: EpochPath, state: State) -> Response:
    """Settle a closed epoch now, or retry a pending settlement."""
    await state.settlement.settle_now(epoch_id)
    return RedirectResponse("/operator/epochs", status_code=303)
