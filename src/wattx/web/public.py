"""Pages anyone may open: the markets, the ledger, the proof checker, sign-in and sign-up,
and the event stream the live parts listen to. No personal field appears on them."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from wattx.api.auth import State
from wattx.api.input import StrictJsonRoute
from wattx.domain.errors import DomainError
from wattx.market.depth import cumulative_depth
from wattx.services.principal import SELF_SERVICE_ROLES, Role
from wattx.web.render import chart_data, depth_chart_data, page, principal_of
from wattx.web.session import cleared_session_cookies, is_tls, require_csrf, session_cookies

router = APIRouter(
    include_in_schema=False,
    dependencies=[Depends(require_csrf)],
    route_class=StrictJsonRoute,
)

_TRADE_ID = re.compile(r"^[0-9a-f]{1,32}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
DEPTH_LEVELS = 20
"""Price levels per side in the market page's book tables and depth chart."""
HISTORY_EPOCHS = 192
"""Epochs the market page's price history spans by default (two days of 15 minutes)."""
HISTORY_EPOCHS_MAX = 2880


async def _markets(state: State) -> dict[str, Any]:
    """Every zone's market, and its trading today (UTC): counts and prices only."""
    now = state.clock.now()
    schedule = state.market.schedule
    today = schedule.epoch_id_at(datetime.combine(now.date(), time(0), tzinfo=UTC))
    activity = await state.public_ledger.zone_activity(from_epoch=today)
    zones = []
    for market in state.market.overview():
        quote = await state.market.reference_price(market.zone, None)
        zones.append(
            {
                "market": market,
                "quote": quote,
                "next": market.upcoming[0],
                "today": activity.get(market.zone),
            }
        )
    return {"zones": zones, "overview": await state.public_ledger.overview(), "as_of": now}


@router.get("/", response_class=HTMLResponse)
async def markets(request: Request, state: State) -> HTMLResponse:
    """Every zone's market: mechanism, current epoch, next gate, reference price, and
    today's trades, volume, prices and number of households trading (live)."""
    return page(request, "markets.html", await _markets(state))


@router.get("/live/markets", response_class=HTMLResponse)
async def markets_live(request: Request, state: State) -> HTMLResponse:
    return page(request, "_markets_live.html", await _markets(state))


async def _market_live(state: State, zone_id: str) -> dict[str, Any]:
    """What the live part of a market page shows, fetched again on each book event."""
    market = state.market
    quote = await market.reference_price(zone_id, None)
    depth = market.depth(zone_id, None, DEPTH_LEVELS)
    steps = cumulative_depth(depth)
    trades = await market.public_trades(zone_id, limit=20)
    clearing = None
    for epoch in await market.closed_epochs(limit=20, offset=0):
        price = json.loads(epoch.clearing_prices).get(zone_id)
        if price is not None:
            clearing = {"epoch_id": epoch.id, "price": price}
            break
    now = state.clock.now()
    return {
        "zone_id": zone_id,
        "quote": quote,
        "depth": depth,
        "depth_steps": steps,
        "depth_chart": depth_chart_data(steps),
        "trades": trades,
        "clearing": clearing,
        "as_of": now,
    }


@router.get("/market/{zone_id}", response_class=HTMLResponse)
async def market(
    zone_id: str,
    request: Request,
    state: State,
    epochs: Annotated[int, Query(ge=1, le=HISTORY_EPOCHS_MAX)] = HISTORY_EPOCHS,
) -> HTMLResponse:
    """The live market; its price history spans the last ``epochs`` epochs up to the one
    being delivered (and the epochs already traded ahead of it), aggregated in SQL."""
    live = await _market_live(state, zone_id)
    info = next(m for m in state.market.overview() if m.zone == zone_id)
    since = max(0, info.current_epoch.id - epochs + 1)
    history = await state.public_ledger.price_history(
        limit=epochs + len(info.upcoming), offset=0, zone=zone_id, from_epoch=since
    )
    history.sort(key=lambda p: p.epoch_id)
    chart = chart_data(
        [state.market.epoch_info(p.epoch_id).start for p in history],
        unit="per kWh",
        divisor=1_000_000,
        series={
            "average": [p.average_price for p in history],
            "low": [p.low_price for p in history],
            "high": [p.high_price for p in history],
        },
    )
    return page(
        request,
        "market.html",
        {
            **live,
            "info": info,
            "next": info.upcoming[0],
            "history": history,
            "history_epochs": epochs,
            "history_since": since,
            "chart": chart,
        },
    )


@router.get("/market/{zone_id}/live", response_class=HTMLResponse)
async def market_live(zone_id: str, request: Request, state: State) -> HTMLResponse:
    """The live fragment of a market page (htmx fetches it when the book changes)."""
    return page(request, "_market_live.html", await _market_live(state, zone_id))


@router.get("/ledger", response_class=HTMLResponse)
async def ledger(request: Request, state: State) -> HTMLResponse:
    ledger = state.public_ledger
    return page(
        request,
        "ledger.html",
        {
            "overview": await ledger.overview(),
            "epochs": await ledger.epochs(limit=20, offset=0),
            "mints": await ledger.mints(limit=20, offset=0),
            "retirements": await ledger.retirements(limit=20, offset=0),
        },
    )


@router.get("/proof", response_class=HTMLResponse)
async def proof(request: Request, state: State, trade_id: str = "") -> HTMLResponse:
    """A trade id in; its Merkle leaf, path and the on-chain root out, with the verdict."""
    trade_id = trade_id.strip().lower()
    errors: dict[str, str] = {}
    found = None
    status_code = 200
    if trade_id:
        if not _TRADE_ID.match(trade_id):
            errors["trade_id"] = "A trade id is up to 32 hexadecimal characters."
            status_code = 422
        else:
            try:
                found = await state.settlement.trade_proof(trade_id)
            except DomainError as exc:
                errors["trade_id"] = exc.detail
                status_code = exc.http_status
    return page(
        request,
        "proof.html",
        {"trade_id": trade_id, "errors": errors, "proof": found},
        status_code=status_code,
    )


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return page(request, "login.html", {"next": _local(next), "errors": {}, "email": ""})


@router.post("/login")
async def login(request: Request, state: State) -> Response:
    form = await request.form()
    email = str(form.get("email", "")).strip()
    password = str(form.get("password", ""))
    target = _local(str(form.get("next", "/")))
    errors: dict[str, str] = {}
    if not _EMAIL.match(email):
        errors["email"] = "Enter the email address you signed up with."
    if not password:
        errors["password"] = "Enter your password."
    if not errors:
        try:
            pair = await state.accounts.login_password(email=email, password=password)
        except DomainError as exc:
            errors["password"] = exc.detail.capitalize() + "."
        else:
            response = RedirectResponse(target, status_code=303)
            _set_session(request, response, pair, state.settings.refresh_token_ttl_s)
            return response
    return page(
        request,
        "login.html",
        {"next": target, "errors": errors, "email": email},
        status_code=401 if "password" in errors and len(errors) == 1 else 422,
    )


@router.get("/signup", response_class=HTMLResponse)
async def signup_form(request: Request) -> HTMLResponse:
    return page(request, "signup.html", {"errors": {}, "values": {}})


@router.post("/signup")
async def signup(request: Request, state: State) -> Response:
    form = await request.form()
    values = {k: str(form.get(k, "")).strip() for k in ("email", "display_name", "role")}
    password = str(form.get("password", ""))
    errors: dict[str, str] = {}
    if not _EMAIL.match(values["email"]) or len(values["email"]) > 254:
        errors["email"] = "Enter a valid email address."
    if not 1 <= len(values["display_name"]) <= 100:
        errors["display_name"] = "Enter a name of 1 to 100 characters."
    if not 12 <= len(password) <= 200:
        errors["password"] = "Use 12 to 200 characters."
    roles = {r.value for r in SELF_SERVICE_ROLES if r is not Role.NODE_OPERATOR}
    if values["role"] not in roles:
        errors["role"] = "Choose whether you sell and buy, or only buy."
    if not errors:
        try:
            await state.accounts.sign_up(
                email=values["email"],
                password=password,
                display_name=values["display_name"],
                role=Role(values["role"]),
            )
            pair = await state.accounts.login_password(email=values["email"], password=password)
        except DomainError as exc:
            errors["email"] = exc.detail.capitalize() + "."
        else:
            response = RedirectResponse("/me", status_code=303)
            _set_session(request, response, pair, state.settings.refresh_token_ttl_s)
            return response
    return page(request, "signup.html", {"errors": errors, "values": values}, status_code=422)


@router.post("/logout")
async def logout(request: Request, state: State) -> Response:
    principal = principal_of(request)
    if principal is not None:
        await state.accounts.logout(principal)
    response = RedirectResponse("/", status_code=303)
    for value in cleared_session_cookies(secure=is_tls(request.scope)):
        response.headers.append("set-cookie", value.decode("latin-1"))
    return response


@router.get("/live/events")
async def live_events(
    request: Request,
    state: State,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=20, pattern=r"^\d+$")
    ] = None,
) -> StreamingResponse:
    """The event stream for pages: public events, and the signed-in user's own."""
    principal = principal_of(request)
    stream = state.events.stream(
        user_id=principal.user_id if principal else "",
        sees_everything=principal.role.sees_everything if principal else False,
        last_event_id=int(last_event_id) if last_event_id is not None else None,
        keepalive_s=state.settings.web_live_ping_s,
        ping_clock=state.clock.now,
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _set_session(request: Request, response: Response, pair: Any, max_age: int) -> None:
    for value in session_cookies(pair, secure=is_tls(request.scope), max_age=max_age):
        response.headers.append("set-cookie", value.decode("latin-1"))
    request.state.session_cookies_set = True


def _local(target: str) -> str:
    """Only a path on this site (no scheme, no host): no open redirect."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target
