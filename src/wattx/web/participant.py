"""A participant's pages: overview, trade ticket, orders and trades, meters.

Every query here is made as the signed-in principal, so the services return
only the caller's own orders, trades, meters and wallet.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from wattx.api.auth import CurrentPrincipal, State
from wattx.api.input import StrictJsonRoute
from wattx.domain import OrderKind, Side
from wattx.domain.errors import DomainError
from wattx.domain.kpis import FORMULAS, HouseholdKpis
from wattx.services.funds.statements import RANGES, StatementPeriodError, parse_month, period_of
from wattx.services.principal import Principal
from wattx.services.trading.market import OrderRequest
from wattx.store.balances import Asset
from wattx.web.forms import ORDER_ERROR_FIELDS, FieldError, refusal, scaled
from wattx.web.render import chart_data, page
from wattx.web.session import require_csrf
from wattx.web.statement_csv import statement_rows_csv

router = APIRouter(
    prefix="/me",
    include_in_schema=False,
    dependencies=[Depends(require_csrf)],
    route_class=StrictJsonRoute,
)


def _day_of(text: str | None, now: datetime) -> date:
    if not text:
        return now.date()
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise StatementPeriodError("at must be a day, YYYY-MM-DD", at=text) from None


@router.get("", response_class=HTMLResponse)
async def overview(
    request: Request,
    principal: CurrentPrincipal,
    state: State,
    kind: Annotated[str, Query(alias="range", max_length=10)] = "month",
    at: Annotated[str | None, Query(max_length=10)] = None,
) -> HTMLResponse:
    """Wallet; key figures over the range in the URL beside the period before it;
    today's production, consumption and traded energy."""
    now = state.clock.now()
    period = period_of(
        kind,
        _day_of(at, now),
        now,
        state.market.schedule,
        await state.statements.first_activity(principal.user_id),
    )
    selected = await _kpis(state, principal, period.since, period.until)
    kpi_periods = [("Selected", period.since, period.until, selected)]
    if period.previous is not None:
        since, until = period.previous
        kpi_periods.append(("Previous", since, until, await _kpis(state, principal, since, until)))
    schedule = state.market.schedule
    first = schedule.epoch_id_at(datetime.combine(now.date(), time(0), tzinfo=now.tzinfo))
    last = schedule.epoch_id_at(now)
    produced = consumed = 0
    per_epoch: dict[int, list[int]] = {}
    meters = await state.meters.list_meters(principal, limit=100, offset=0)
    for meter in meters:
        rows = await state.metering.epoch_energy(
            principal, meter.id, from_epoch=first, to_epoch=last, limit=200, offset=0
        )
        for row in rows:
            produced += row.verified_export_wh
            consumed += row.import_wh
            slot = per_epoch.setdefault(row.epoch_id, [0, 0])
            slot[0] += row.verified_export_wh
            slot[1] += row.import_wh
    bought = sold = 0
    for trade in await state.market.list_trades(
        principal, zone=None, epoch_id=None, limit=500, offset=0
    ):
        if trade.epoch_id < first:
            continue
        if trade.buyer == principal.user_id:
            bought += trade.qty_wh
        if trade.seller == principal.user_id:
            sold += trade.qty_wh
    epochs = sorted(per_epoch)
    chart = chart_data(
        [state.market.epoch_info(e).start for e in epochs],
        unit="kWh",
        divisor=1_000,
        series={
            "produced": [per_epoch[e][0] for e in epochs],
            "consumed": [per_epoch[e][1] for e in epochs],
        },
    )
    return page(
        request,
        "me.html",
        {
            **await _flow_context(state, principal),
            "user": await state.accounts.get_user(principal.user_id),
            "wallet": await state.wallet.wallet(principal.user_id),
            "produced": produced,
            "consumed": consumed,
            "bought": bought,
            "sold": sold,
            "chart": chart,
            "energy_rows": [
                (state.market.epoch_info(e), per_epoch[e][0], per_epoch[e][1]) for e in epochs
            ],
            "kpi_periods": kpi_periods,
            "period": period,
            "ranges": RANGES,
            "at": _day_of(at, now).isoformat(),
            "formulas": FORMULAS,
        },
    )


async def _flow_context(state: State, principal: Principal) -> dict[str, Any]:
    now = state.clock.now()
    epoch_id = state.energy_flow.current_epoch(now)
    return {
        "flow": await state.energy_flow.flow(principal, epoch_id),
        "flow_epoch": state.market.epoch_info(epoch_id),
        "as_of": now,
    }


@router.get("/flow/live", response_class=HTMLResponse)
async def flow_live(request: Request, principal: CurrentPrincipal, state: State) -> HTMLResponse:
    """The energy flow of the epoch being delivered, fetched again on each live event."""
    return page(request, "_flow_live.html", await _flow_context(state, principal))


async def _kpis(
    state: State, principal: Principal, since: datetime, until: datetime
) -> HouseholdKpis:
    return await state.statements.kpis(principal.user_id, since, until)


async def _ticket_context(state: State, principal: Principal) -> dict[str, Any]:
    zones = []
    for market in state.market.overview():
        quote = await state.market.reference_price(market.zone, None)
        zones.append({"market": market, "quote": quote})
    return {
        "zones": zones,
        "upcoming": state.market.overview()[0].upcoming if zones else [],
        "wallet": await state.wallet.wallet(principal.user_id),
        "admitted": principal.is_admitted,
    }


@router.get("/ticket", response_class=HTMLResponse)
async def ticket(request: Request, principal: CurrentPrincipal, state: State) -> HTMLResponse:
    context = await _ticket_context(state, principal)
    return page(request, "ticket.html", {**context, "errors": {}, "values": {}, "placed": None})


@router.post("/orders", response_class=HTMLResponse)
async def place_order(request: Request, principal: CurrentPrincipal, state: State) -> Response:
    """Place a limit order from the ticket; a refusal is shown next to the field."""
    form = await request.form()
    values = {
        k: str(form.get(k, "")).strip() for k in ("side", "zone", "epoch_id", "qty", "limit_price")
    }
    errors: dict[str, str] = {}
    placed = None
    status_code = 200
    try:
        if values["side"] not in (Side.BUY.value, Side.SELL.value):
            raise FieldError("side", "Choose buy or sell.")
        zones = {m.zone for m in state.market.overview()}
        if values["zone"] not in zones:
            raise FieldError("zone", "Choose a zone.")
        epoch_id = None
        if values["epoch_id"]:
            if not values["epoch_id"].isdigit():
                raise FieldError("epoch_id", "Choose a delivery epoch.")
            epoch_id = int(values["epoch_id"])
        qty_wh = scaled("qty", values["qty"], 3, "kWh")
        limit_price = scaled("limit_price", values["limit_price"], 6, "per kWh")
    except FieldError as exc:
        errors[exc.field] = exc.message
        status_code = 422
    else:
        order = OrderRequest(
            side=Side(values["side"]),
            qty_wh=qty_wh,
            zone=values["zone"],
            epoch_id=epoch_id,
            limit_price=limit_price,
            kind=OrderKind.LIMIT,
        )
        try:
            outcome = await state.market.submit(principal, order, idempotency_key=None)
        except DomainError as exc:
            errors[ORDER_ERROR_FIELDS.get(exc.code, "form")] = exc.detail
            status_code = exc.http_status
        else:
            placed = outcome.body
    context = await _ticket_context(state, principal)
    template = "_ticket.html" if "hx-request" in request.headers else "ticket.html"
    return page(
        request,
        template,
        {**context, "errors": errors, "values": values if errors else {}, "placed": placed},
        status_code=status_code,
    )


@router.post("/orders/{order_id}/cancel")
async def cancel_order(
    order_id: str, request: Request, principal: CurrentPrincipal, state: State
) -> Response:
    await state.market.cancel(principal, order_id)
    return RedirectResponse("/me/orders", status_code=303)


@router.post("/orders/{order_id}/amend", response_class=HTMLResponse)
async def amend_order(
    order_id: str, request: Request, principal: CurrentPrincipal, state: State
) -> Response:
    """Replace an open order's quantity and/or limit price (cancel + new order)."""
    form = await request.form()
    qty_text = str(form.get("qty", "")).strip()
    price_text = str(form.get("limit_price", "")).strip()
    try:
        qty_wh = scaled("qty", qty_text, 3, "kWh") if qty_text else None
        limit_price = scaled("limit_price", price_text, 6, "per kWh") if price_text else None
        if qty_wh is None and limit_price is None:
            raise FieldError("qty", "Give a new quantity or a new limit price.")
    except FieldError as exc:
        return await _orders_page(request, state, principal, {order_id: exc.message}, 422)
    try:
        await state.market.amend(principal, order_id, qty_wh=qty_wh, limit_price=limit_price)
    except DomainError as exc:
        if exc.http_status == 404:
            raise
        return await _orders_page(
            request, state, principal, {order_id: exc.detail}, exc.http_status
        )
    return RedirectResponse("/me/orders", status_code=303)


async def _orders_page(
    request: Request,
    state: State,
    principal: Principal,
    errors: dict[str, str],
    status_code: int,
) -> HTMLResponse:
    context = {**await _orders_context(state, principal), "errors": errors}
    return page(request, "orders.html", context, status_code=status_code)


async def _orders_context(state: State, principal: Principal) -> dict[str, Any]:
    trades = await state.market.list_trades(principal, zone=None, epoch_id=None, limit=50, offset=0)
    # The physical delivery of the caller's newest trades (a financial trade has none).
    pairs = await state.delivery.deliveries(
        principal, epoch_id=None, limit=200, offset=0, newest_first=True
    )
    return {
        "errors": {},
        "orders": await state.market.list_orders(
            principal,
            owner=None,
            zone=None,
            epoch_id=None,
            status=None,
            side=None,
            limit=50,
            offset=0,
        ),
        "trades": trades,
        "deliveries": {d.trade_id: d for d, _ in pairs},
        "me": principal.user_id,
        "as_of": state.clock.now(),
    }


@router.get("/orders", response_class=HTMLResponse)
async def orders(request: Request, principal: CurrentPrincipal, state: State) -> HTMLResponse:
    return page(request, "orders.html", await _orders_context(state, principal))


@router.get("/orders/live", response_class=HTMLResponse)
async def orders_live(request: Request, principal: CurrentPrincipal, state: State) -> HTMLResponse:
    return page(request, "_orders_live.html", await _orders_context(state, principal))


@router.get("/meters", response_class=HTMLResponse)
async def meters(request: Request, principal: CurrentPrincipal, state: State) -> HTMLResponse:
    """Each meter: status, last reading, quarantined readings and grid alerts."""
    rows = []
    for meter in await state.meters.list_meters(principal, limit=100, offset=0):
        readings = await state.metering.readings(principal, meter.id, limit=20, offset=0)
        alerts = await state.metering.alerts(
            meter_id=meter.id, kind=None, since=None, limit=10, offset=0
        )
        rows.append(
            {
                "meter": meter,
                "last": readings[0] if readings else None,
                "quarantined": [r for r in readings if r.status == "quarantined"],
                "alerts": alerts,
            }
        )
    return page(request, "my_meters.html", {"rows": rows})


def _month_of(text: str | None, now: datetime) -> tuple[int, int]:
    """``YYYY-MM`` from the query (this month when absent)."""
    return parse_month(text) if text else (now.year, now.month)


def _shift(year: int, month: int, by: int) -> str:
    index = year * 12 + month - 1 + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@router.get("/statement", response_class=HTMLResponse)
async def statement(
    request: Request, principal: CurrentPrincipal, state: State, month: str | None = None
) -> HTMLResponse:
    """The month's money and energy: opening, every change, closing; and its key figures."""
    year, number = _month_of(month, state.clock.now())
    found = await state.statements.statement(principal.user_id, year, number)
    return page(
        request,
        "statement.html",
        {
            "st": found,
            "month": f"{year:04d}-{number:02d}",
            "previous": _shift(year, number, -1),
            "next": _shift(year, number, 1),
            "formulas": FORMULAS,
        },
    )


@router.get("/statement.csv")
async def statement_csv(
    principal: CurrentPrincipal, state: State, month: str | None = None
) -> Response:
    """The same statement as CSV: integers only (micro-units, Wh, ppm)."""
    year, number = _month_of(month, state.clock.now())
    found = await state.statements.statement(principal.user_id, year, number)
    name = f"wattx-statement-{year:04d}-{number:02d}.csv"
    return Response(
        statement_rows_csv(found),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# Which field of the wallet forms a refusal concerns, by its stable code.
DEPOSIT_ERROR_FIELDS = {
    "invalid_amount": "deposit_amount",
    "invalid_reference": "reference",
}
WALLET_ERROR_FIELDS = {
    "insufficient_balance": "amount",
    "invalid_amount": "amount",
    "retirement_exceeds_consumption": "retire_qty",
}
# The retire form names its quantity ``retire_qty`` where the withdraw form has ``amount``.
RETIRE_ERROR_FIELDS = {
    code: "retire_qty" if field == "amount" else field
    for code, field in WALLET_ERROR_FIELDS.items()
}


async def _wallet_page(
    request: Request,
    state: State,
    principal: Principal,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    done: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    wallet = state.wallet
    self_custody = await wallet.custody.is_self_custody(principal.user_id)
    chain = await wallet.chain_view(principal.user_id) if self_custody else None
    deployment = state.chain_accounts.chain.deployment
    return page(
        request,
        "wallet.html",
        {
            "wallet": await wallet.wallet(principal.user_id),
            "requests": await wallet.requests.mine(principal, limit=20, offset=0),
            "self_custody": self_custody,
            "chain": chain,
            "marketplace": deployment.address_of("Marketplace"),
            "credit_token": deployment.address_of("CreditToken"),
            "errors": errors or {},
            "values": values or {},
            "done": done,
        },
        status_code=status_code,
    )


@router.get("/wallet", response_class=HTMLResponse)
async def wallet_page(request: Request, principal: CurrentPrincipal, state: State) -> HTMLResponse:
    """Balances, and the withdraw and retire forms."""
    return await _wallet_page(request, state, principal)


@router.post("/wallet/deposit-requests", response_class=HTMLResponse)
async def request_deposit(request: Request, principal: CurrentPrincipal, state: State) -> Response:
    """Ask the operator for credit paid outside wattx, as
    ``POST /api/v1/wallet/deposit-requests``; the operator approves it (the deposit)."""
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in ("deposit_amount", "reference")}
    source = request.client.host if request.client else "unknown"
    try:
        amount = scaled("deposit_amount", values["deposit_amount"], 6, "credit")
        filed = await state.wallet.requests.request(
            principal, amount, values["reference"], source=source
        )
    except (FieldError, DomainError) as exc:
        refused = refusal(exc, DEPOSIT_ERROR_FIELDS, "deposit_form", with_code=True)
        return await _wallet_page(
            request,
            state,
            principal,
            errors=refused.errors,
            values=values,
            status_code=refused.status_code,
        )
    done = f"Deposit request {filed.reference!r} sent: the operator credits it once paid."
    return await _wallet_page(request, state, principal, done=done)


@router.post("/wallet/withdraw", response_class=HTMLResponse)
async def withdraw(request: Request, principal: CurrentPrincipal, state: State) -> Response:
    """Withdraw free credit or energy tokens, as ``POST /api/v1/wallet/withdraw``."""
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in ("asset", "amount")}
    try:
        if values["asset"] not in (Asset.CREDIT.value, Asset.ENERGY.value):
            raise FieldError("asset", "Choose credit or energy tokens.")
        asset = Asset(values["asset"])
        if asset is Asset.CREDIT:
            amount = scaled("amount", values["amount"], 6, "credit")
        else:
            amount = scaled("amount", values["amount"], 3, "kWh")
        await state.wallet.withdraw(principal.user_id, asset, amount)
    except (FieldError, DomainError) as exc:
        refused = refusal(exc, WALLET_ERROR_FIELDS, "withdraw_form")
        return await _wallet_page(
            request,
            state,
            principal,
            errors=refused.errors,
            values=values,
            status_code=refused.status_code,
        )
    return await _wallet_page(request, state, principal, done="Withdrawal sent.")


@router.post("/wallet/retire", response_class=HTMLResponse)
async def retire(request: Request, principal: CurrentPrincipal, state: State) -> Response:
    """Retire energy tokens against metered consumption, as ``POST /api/v1/tokens/retire``."""
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in ("retire_qty", "reason")}
    try:
        qty_wh = scaled("retire_qty", values["retire_qty"], 3, "kWh")
        if not 1 <= len(values["reason"]) <= 64:
            raise FieldError("reason", "Give a reason of 1 to 64 characters.")
        await state.retirement.retire(principal.user_id, qty_wh, values["reason"])
    except (FieldError, DomainError) as exc:
        refused = refusal(exc, RETIRE_ERROR_FIELDS, "retire_form")
        return await _wallet_page(
            request,
            state,
            principal,
            errors=refused.errors,
            values=values,
            status_code=refused.status_code,
        )
    return await _wallet_page(request, state, principal, done="Energy tokens retired.")
