"""Templates and the filters that print exact integers: Wh, micro-units, prices."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from wattx.market.depth import DepthStep
from wattx.services.principal import Principal, Role
from wattx.web.session import csrf_token

_HERE = Path(__file__).parent
templates = Jinja2Templates(directory=_HERE / "templates")


def _decimal(value: int, places: int, keep: int) -> str:
    """``value`` scaled down by 10**places, exact, with at least ``keep`` decimals."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**places)
    digits = f"{frac:0{places}d}".rstrip("0")
    digits = digits.ljust(keep, "0")
    grouped = f"{whole:,}".replace(",", "\u202f")
    return f"{sign}{grouped}.{digits}" if digits else f"{sign}{grouped}"


def money(micro: int | None) -> str:
    """Micro-units as currency units, exact: 1_234_500 → 1.2345."""
    return "–" if micro is None else _decimal(int(micro), 6, 2)


def kwh(wh: int | None) -> str:
    """Watt-hours as kWh, exact: 1_500 → 1.5."""
    return "–" if wh is None else _decimal(int(wh), 3, 1)


def ppm(value: int) -> str:
    """A factor in parts per million as a multiplier: 1_050_000 → ×1.05."""
    return "×" + _decimal(value, 6, 2)


def percent(ppm: int | None) -> str:
    """Parts per million as a percentage, exact: 333_333 → 33.3333 %."""
    return "–" if ppm is None else _decimal(int(ppm), 4, 1) + " %"


def when(value: datetime | str | None) -> str:
    if value is None:
        return "–"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(value: datetime) -> str:
    return value.isoformat()


def short(text: str | None, keep: int = 10) -> str:
    if not text:
        return "–"
    return text if len(text) <= keep + 2 else text[:keep] + "…"


templates.env.filters.update(
    money=money, kwh=kwh, ppm=ppm, percent=percent, when=when, iso=iso, short=short
)


def chart_data(
    times: list[datetime], *, unit: str, divisor: int, series: dict[str, list[int]]
) -> str:
    """A chart's figures for ``static/app.js`` (uPlot), as JSON in a ``data-chart`` attribute.

    The integers go as they are; the script divides by ``divisor`` only to draw.
    Every chart also has a table of the same figures on the page.
    """
    return json.dumps(
        {
            "x": [int(t.timestamp()) for t in times],
            "unit": unit,
            "divisor": divisor,
            "series": [{"label": label, "values": values} for label, values in series.items()],
        }
    )


def depth_chart_data(steps: list[DepthStep]) -> str:
    """A depth chart's figures: price (micro-units per kWh) across, cumulative kWh up,
    drawn as steps; ``null`` where a side has no level (see ``cumulative_depth``)."""
    return json.dumps(
        {
            "x": [s.price for s in steps],
            "x_divisor": 1_000_000,
            "x_unit": "price per kWh",
            "unit": "kWh",
            "divisor": 1000,
            "stepped": True,
            "series": [
                {
                    "label": "bids (buy), at this price or higher",
                    "values": [s.bid_wh for s in steps],
                },
                {
                    "label": "asks (sell), at this price or lower",
                    "values": [s.ask_wh for s in steps],
                },
            ],
        }
    )


def principal_of(request: Request) -> Principal | None:
    found: Principal | None = getattr(request.state, "principal", None)
    return found


def nav_for(principal: Principal | None) -> list[tuple[str, str]]:
    """The links of the header for whoever is looking."""
    links = [("/", "Markets"), ("/ledger", "Ledger"), ("/proof", "Proof checker")]
    if principal is None:
        return links
    links.append(("/governance", "Governance"))
    if principal.role in (Role.PROSUMER, Role.CONSUMER):
        links += [
            ("/me", "My energy"),
            ("/me/ticket", "Trade"),
            ("/me/orders", "Orders & trades"),
            ("/me/meters", "Meters"),
            ("/me/wallet", "Wallet"),
            ("/me/statement", "Statement"),
        ]
    if principal.role.sees_everything:
        links += [
            ("/operator", "Participants"),
            ("/operator/meters", "Meters"),
            ("/operator/quarantine", "Quarantine"),
            ("/operator/alerts", "Alerts"),
            ("/operator/zones", "Zones"),
            ("/operator/epochs", "Epochs"),
            ("/operator/nodes", "Nodes"),
            ("/operator/devices", "Devices"),
            ("/operator/deliveries", "Deliveries"),
            ("/operator/audit", "Audit trail"),
        ]
    return links


def page(
    request: Request, name: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    principal = principal_of(request)
    full = {
        "principal": principal,
        "nav": nav_for(principal),
        "path": request.url.path,
        "csrf_token": csrf_token(request),
        "server_now": request.app.state.wattx.clock.now(),
        **context,
    }
    return templates.TemplateResponse(request, name, full, status_code=status_code)
