"""The dashboard's server time per page with a 100-household month of data, and the
JavaScript a first visit loads.

Builds the service in-process on a fresh SQLite database (the app `wattx up`
serves, without the epoch clock), signs up ``--households`` prosumers with a
meter each, then writes one month of data straight into the store (the bench
measures rendering, not ingest): every meter's energy for every epoch of the
month (a PV-shaped export by day, a load the rest of the time), ``--trades``
trades per household per day between neighbours, and the balance journal's
purchase, sale and fee lines for each trade. Then every page is fetched
``--repeat`` times through the ASGI interface (the server's own time: routing,
services, queries, templates; no network), as a household, the operator or
anyone. Finally the scripts the base template loads are fetched and their
gzipped sizes summed (what a first visit downloads; later visits hit the cache).

    .venv/bin/python bench/web.py
    .venv/bin/python bench/web.py --households 200 --repeat 50 --json

    .venv/bin/python bench/web.py --households 200 --year --repeat 5

Then, unless ``--no-browser``, the household home page is loaded in Chromium
(Debian's, as in the browser tests) on an emulated mid-range phone through
the Chrome DevTools Protocol (``Emulation.setCPUThrottlingRate`` 4, a mobile
viewport, ``Network.emulateNetworkConditions`` at fast-3G-like speed, cache
off): its largest contentful paint, the gzipped JavaScript it loaded, and
axe-core's serious and critical violations under the WCAG 2.2 AA tags; and the
live latency: two households keep ``/me/orders`` open, one sells and the other
buys across it ``--latency`` times through the API, and each page stamps when
the trade's row appears (p50, p95 and max from the crossing order's request).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import re
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, text

from wattx.api.app import create_app
from wattx.api.state import AppState
from wattx.config import Settings
from wattx.store import Database, upgrade_to_head
from wattx.store.models import TradeRow
from wattx.store.models_statements import LedgerEntryRow

PASSWORD = "bench-password-1234"
MONTH_START = datetime(2026, 6, 1, tzinfo=UTC)
NOW = datetime(2026, 6, 30, 20, 0, tzinfo=UTC)
HTML = {"accept": "text/html"}


class FixedClock:
    def __init__(self, at: datetime) -> None:
        self.current = at

    def now(self) -> datetime:
        return self.current


@dataclass
class PageTime:
    page: str
    viewer: str
    status: int
    median_ms: float
    p95_ms: float
    bytes: int


@dataclass
class Phone:
    """The household home page (/me) in Chromium on an emulated mid-range phone."""

    emulation: str
    runs: int
    lcp_ms: list[float]
    lcp_median_ms: float
    transferred_js_gzip_bytes: int
    axe_serious_or_critical: int
    axe_rules: list[str]


@dataclass
class PageLatency:
    """One open page's times from a crossing order's request to its trade's row."""

    page: str
    ms: list[float]
    p50_ms: float
    p95_ms: float
    max_ms: float


@dataclass
class Latency:
    """From a crossing order's request to its trade on every open page, pushed."""

    trades: int
    pages: list[str]
    ms: list[float]
    p50_ms: float
    p95_ms: float
    max_ms: float
    per_page: list[PageLatency]


@dataclass
class Result:
    households: int
    epochs: int
    energy_rows: int
    trades: int
    journal_rows: int
    seed_s: float
    pages: list[PageTime]
    js_files: int
    js_bytes: int
    js_gzip_bytes: int
    phone: Phone | None
    latency: Latency | None


async def _login(client: httpx.AsyncClient, email: str) -> None:
    await client.get("/login")
    token = client.cookies.get("wattx_csrf") or ""
    if not token:
        match = re.search(r'name="csrf_token" value="([^"]+)"', (await client.get("/login")).text)
        token = match.group(1) if match else ""
    response = await client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    if response.status_code != 303:
        raise SystemExit(f"bench: could not sign in {email}: {response.status_code}")


async def _seed(
    app: Any, state: AppState, households: int, trades_per_day: int, start_at: datetime
) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://wattx.test") as api:
        op_email = f"op-{uuid.uuid4().hex[:8]}@bench.test"
        await state.accounts.create_operator(
            email=op_email, password=PASSWORD, display_name="Operator"
        )
        login = await api.post("/api/v1/auth/login", json={"email": op_email, "password": PASSWORD})
        op_headers = {"authorization": f"Bearer {login.json()['access_token']}"}
        zone = await api.post(
            "/api/v1/zones",
            json={
                "id": "main",
                "name": "Main feeder",
                "tariff": [
                    {"start_hour": 0, "feed_in": 50_000, "retail": 250_000},
                    {"start_hour": 17, "feed_in": 50_000, "retail": 380_000},
                    {"start_hour": 21, "feed_in": 50_000, "retail": 250_000},
                ],
            },
            headers=op_headers,
        )
        if zone.status_code != 201:
            raise SystemExit(f"bench: zone refused: {zone.text}")
        users: list[tuple[str, str]] = []
        meters: list[str] = []
        for i in range(households):
            email = f"house-{i}-{uuid.uuid4().hex[:6]}@bench.test"
            signed = await api.post(
                "/api/v1/auth/signup",
                json={
                    "email": email,
                    "password": PASSWORD,
                    "display_name": f"House {i}",
                    "role": "prosumer",
                },
            )
            user_id = signed.json()["id"]
            await api.patch(
                f"/api/v1/admin/users/{user_id}", json={"status": "admitted"}, headers=op_headers
            )
            token = await api.post(
                "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
            )
            headers = {"authorization": f"Bearer {token.json()['access_token']}"}
            meter = await api.post(
                "/api/v1/meters",
                json={
                    "serial": f"bench-{i}-{uuid.uuid4().hex[:6]}",
                    "zone_id": "main",
                    "rated_capacity_w": 20_000,
                    "public_key": f"{i:064x}",
                },
                headers=headers,
            )
            if meter.status_code != 201:
                raise SystemExit(f"bench: meter refused: {meter.text}")
            users.append((user_id, email))
            meters.append(meter.json()["id"])

    length = state.settings.epoch_length_s
    first = int(start_at.timestamp()) // length
    last = int(NOW.timestamp()) // length
    epochs = range(first, last)
    # Every meter's energy per epoch, generated by the database itself (a year of
    # 200 households is 7 million rows): a PV-shaped export by day, a load otherwise.
    async with state.db.write() as session:
        for index, meter_id in enumerate(meters):
            await session.execute(
                text(
                    "WITH RECURSIVE e(x) AS (SELECT :first UNION ALL SELECT x + 1 FROM e "
                    "WHERE x < :last - 1), s(x, sun, load) AS (SELECT x, "
                    "MAX(0, 6 - ABS((x * :len / 3600) % 24 - 13)) * (300 + :i % 7 * 20), "
                    "150 + (:i * 37 + x) % 120 FROM e) "
                    "INSERT INTO meter_epoch_energy "
                    "(meter_id, epoch_id, import_wh, export_wh, verified_export_wh) "
                    "SELECT :m, x, CASE WHEN sun > load THEN 0 ELSE load END, "
                    "CASE WHEN sun > load THEN sun - load ELSE 0 END, "
                    "CASE WHEN sun > load THEN sun - load ELSE 0 END FROM s"
                ),
                {"first": first, "last": last, "len": length, "i": index, "m": meter_id},
            )
    trades: list[dict[str, Any]] = []
    journal: list[dict[str, Any]] = []
    counts = {"trades": 0, "journal": 0}

    async def flush() -> None:
        async with state.db.write() as session:
            for table, rows in ((TradeRow, trades), (LedgerEntryRow, journal)):
                for start in range(0, len(rows), 5_000):
                    await session.execute(insert(table), rows[start : start + 5_000])
        counts["trades"] += len(trades)
        counts["journal"] += len(journal)
        trades.clear()
        journal.clear()

    per_day = length and 86_400 // length
    # Trade numbers below zero: the running engine numbers its own trades from 1, so the
    # trades the live latency run makes come after (and never collide with) these.
    seq = -(len(epochs) // per_day) * households * trades_per_day - 1
    for day in range(len(epochs) // per_day):
        for h in range(households):
            for k in range(trades_per_day):
                seq += 1
                epoch = first + day * per_day + 40 + (k * 3 + h) % 16
                seller, buyer = users[h][0], users[(h + 1 + k) % households][0]
                qty, price = 200 + (h * 13 + k) % 300, 120_000 + (h * 97 + day) % 40_000
                value = qty * price // 1000
                fee = value * 25 // 10_000
                at = datetime.fromtimestamp(epoch * length, UTC) - timedelta(hours=2)
                trade_id = uuid.uuid4().hex
                trades.append(
                    {
                        "id": trade_id,
                        "seq": seq,
                        "epoch_id": epoch,
                        "zone": "main",
                        "buy_order_id": uuid.uuid4().hex,
                        "sell_order_id": uuid.uuid4().hex,
                        "buyer": buyer,
                        "seller": seller,
                        "buyer_zone": "main",
                        "seller_zone": "main",
                        "qty_wh": qty,
                        "delivered_wh": qty,
                        "price": price,
                        "value": value,
                        "buyer_fee": fee,
                        "seller_fee": fee,
                        "wheeling_fee": 0,
                        "executed_at": at,
                        "settlement_status": "settled",
                    }
                )
                for account, asset, amount, kind in (
                    (buyer, "credit", -(value + fee), "purchase"),
                    (buyer, "energy", qty, "purchase"),
                    (seller, "credit", value - fee, "sale"),
                    (seller, "energy", -qty, "sale"),
                ):
                    journal.append(
                        {
                            "account_id": account,
                            "asset": asset,
                            "amount": amount,
                            "kind": kind,
                            "ref": trade_id,
                            "at": at,
                        }
                    )
        if len(trades) >= 20_000:
            await flush()
    await flush()
    return {
        "users": users,
        "operator": op_email,
        "epochs": len(epochs),
        "energy_rows": len(epochs) * len(meters),
        "trades": counts["trades"],
        "journal_rows": counts["journal"],
    }


async def _time_pages(
    client: httpx.AsyncClient, viewer: str, pages: list[str], repeat: int
) -> list[PageTime]:
    out = []
    for path in pages:
        times, status, size = [], 0, 0
        for _ in range(repeat):
            started = time.perf_counter()
            response = await client.get(path)
            times.append((time.perf_counter() - started) * 1000)
            status, size = response.status_code, len(response.content)
        times.sort()
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        out.append(PageTime(path, viewer, status, statistics.median(times), p95, size))
    return out


async def _javascript(client: httpx.AsyncClient, html: str) -> tuple[int, int, int]:
    sources = re.findall(r'<script[^>]+src="([^"]+)"', html)
    raw = packed = 0
    for src in sources:
        body = (await client.get(src)).content
        raw += len(body)
        packed += len(gzip.compress(body, compresslevel=9))
    return len(sources), raw, packed


async def run(args: argparse.Namespace) -> Result:
    with tempfile.TemporaryDirectory(prefix="wattx-bench-web-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'wattx.sqlite3'}",
            jwt_secret="bench-secret-key-of-sufficient-length",
            rate_limit_auth_per_window=1_000_000,
            rate_limit_default_per_window=1_000_000,
            log_level="WARNING",
        )
        db = Database(settings.database_url)
        try:
            await upgrade_to_head(db)
        finally:
            await db.dispose()
        app = create_app(settings, clock=FixedClock(NOW), run_epoch_clock=False)
        async with app.router.lifespan_context(app):
            state: AppState = app.state.wattx
            print(f"bench: seeding {'a year' if args.year else 'a month'}…", file=sys.stderr)
            started = time.perf_counter()
            start_at = NOW - timedelta(days=365) if args.year else MONTH_START
            seeded = await _seed(app, state, args.households, args.trades, start_at)
            seed_s = time.perf_counter() - started
            transport = httpx.ASGITransport(app=app)
            pages: list[PageTime] = []
            base = "http://wattx.test"
            async with httpx.AsyncClient(transport=transport, base_url=base, headers=HTML) as anon:
                print("bench: public pages…", file=sys.stderr)
                pages += await _time_pages(
                    anon, "anyone", ["/", "/market/main", "/ledger"], args.repeat
                )
            async with httpx.AsyncClient(transport=transport, base_url=base, headers=HTML) as home:
                await _login(home, seeded["users"][0][1])
                print("bench: household pages…", file=sys.stderr)
                pages += await _time_pages(
                    home,
                    "household",
                    [
                        "/me",
                        "/me?range=month&at=2026-06-15",
                        "/me?range=year&at=2026-06-15",
                        "/me?range=all",
                        "/me/orders",
                        "/me/wallet",
                        "/me/statement?month=2026-06",
                        "/me/statement.csv?month=2026-06",
                    ],
                    args.repeat,
                )
                files, js_raw, js_gzip = await _javascript(home, (await home.get("/me")).text)
            phone = None
            latency = None
            if args.browser:
                print("bench: the household page on an emulated phone…", file=sys.stderr)
                phone = await _phone(app, seeded["users"][0][1], args.phone_runs)
                if args.latency:
                    print("bench: live latency of trades on two open pages…", file=sys.stderr)
                    latency = await _latency(app, seeded, args.latency)
            async with httpx.AsyncClient(transport=transport, base_url=base, headers=HTML) as op:
                await _login(op, seeded["operator"])
                print("bench: operator pages…", file=sys.stderr)
                pages += await _time_pages(
                    op,
                    "operator",
                    ["/operator", "/operator/meters", "/operator/epochs", "/operator/audit"],
                    args.repeat,
                )
    return Result(
        households=args.households,
        epochs=seeded["epochs"],
        energy_rows=seeded["energy_rows"],
        trades=seeded["trades"],
        journal_rows=seeded["journal_rows"],
        seed_s=round(seed_s, 1),
        pages=pages,
        js_files=files,
        js_bytes=js_raw,
        js_gzip_bytes=js_gzip,
        phone=phone,
        latency=latency,
    )


# A mid-range phone: 4x CPU slowdown, a 412 x 823 screen at 2.625 dpr, and a
# fast-3G-like network (150 ms round trip, 1.6 Mbit/s down, 750 kbit/s up:
# the "slow 4G" Lighthouse's mobile runs use, DevTools' "Fast 3G" bandwidth).
CPU_SLOWDOWN = 4
NETWORK = {
    "offline": False,
    "latency": 150,
    "downloadThroughput": 1_600_000 // 8,
    "uploadThroughput": 750_000 // 8,
}
EMULATION = "CPU 4x slower, 412x823 @2.625, 150 ms RTT, 1.6 Mbit/s down, 750 kbit/s up, cold cache"
LCP_SCRIPT = """() => new Promise((resolve) => {
    let last = 0;
    new PerformanceObserver((list) => {
        for (const e of list.getEntries()) { last = e.renderTime || e.loadTime || e.startTime; }
    }).observe({type: "largest-contentful-paint", buffered: true});
    setTimeout(() => resolve(last), 500);
})"""


TESTS = Path(__file__).resolve().parent.parent / "tests"


def _collect_scripts(into: list[str]) -> Any:
    def collect(response: Any) -> None:
        if response.request.resource_type == "script":
            into.append(response.url)

    return collect


async def _phone(app: Any, email: str, runs: int) -> Phone:
    """LCP of /me on an emulated phone (CDP throttling), the gzipped JavaScript it
    transferred, and axe-core's serious and critical findings (WCAG 2.2 AA tags)."""
    from playwright.async_api import async_playwright

    sys.path.insert(0, str(TESTS))
    from web.browser import CHROMIUM, CHROMIUM_ARGS, accessibility_violations

    server, serving, base = await _serve(app)
    lcps: list[float] = []
    js_gzip = 0
    violations: list[dict[str, Any]] = []
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for run_index in range(runs):
                ctx = await browser.new_context(
                    base_url=base,
                    viewport={"width": 412, "height": 823},
                    device_scale_factor=2.625,
                    is_mobile=True,
                    has_touch=True,
                    bypass_csp=True,
                )
                await _sign_in(await ctx.new_page(), email)
                # A fresh page with the cache off: a first visit, signed in.
                measured = await ctx.new_page()
                cdp = await ctx.new_cdp_session(measured)
                await cdp.send("Network.enable")
                await cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
                await cdp.send("Network.emulateNetworkConditions", NETWORK)
                await cdp.send("Emulation.setCPUThrottlingRate", {"rate": CPU_SLOWDOWN})
                scripts: list[str] = []
                measured.on("response", _collect_scripts(scripts))
                await measured.goto("/me", wait_until="load")
                lcps.append(round(float(await measured.evaluate(LCP_SCRIPT)), 1))
                if run_index == 0:
                    async with httpx.AsyncClient() as plain:
                        for url in scripts:
                            body = (await plain.get(url)).content
                            js_gzip += len(gzip.compress(body, compresslevel=9))
                    await cdp.send("Emulation.setCPUThrottlingRate", {"rate": 1})
                    violations = await accessibility_violations(measured)
                await ctx.close()
            await browser.close()
    finally:
        server.should_exit = True
        await serving
    return Phone(
        emulation=EMULATION,
        runs=runs,
        lcp_ms=lcps,
        lcp_median_ms=statistics.median(lcps),
        transferred_js_gzip_bytes=js_gzip,
        axe_serious_or_critical=len(violations),
        axe_rules=sorted({v["id"] for v in violations}),
    )


SEEN_SCRIPT = """() => {
    window.__wattxSeen = window.__wattxSeen || {};
    const record = () => {
        for (const row of document.querySelectorAll("[data-trade]")) {
            const id = row.getAttribute("data-trade");
            if (!(id in window.__wattxSeen)) { window.__wattxSeen[id] = Date.now(); }
        }
    };
    record();
    new MutationObserver(record).observe(document.body, {childList: true, subtree: true});
}"""


async def _serve(app: Any) -> tuple[Any, asyncio.Task[None], str]:
    """Serve ``app`` on a free local port; the server, its task and its base URL."""
    import socket

    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
        await asyncio.sleep(0.02)
    return server, serving, f"http://127.0.0.1:{port}"


async def _sign_in(page: Any, email: str) -> None:
    """Sign in through the dashboard's login form."""
    await page.goto("/login")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("form.form button[type=submit]")
    await page.wait_for_load_state()


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    """p50, p95 and max."""
    ordered = sorted(samples)
    return (
        statistics.median(ordered),
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
        ordered[-1],
    )


async def _latency(app: Any, seeded: dict[str, Any], trades: int) -> Latency:
    """Four pages stay open in Chromium, each in its own context: the seller's and the
    buyer's ``/me/orders``, the public ``/market/main`` (signed out) and the operator's
    console ``/operator/epochs``. ``trades`` times one household sells and the other buys
    across it through the HTTP API. Each page stamps, with a MutationObserver, the
    wall-clock moment the trade's row appears (pushed: the page refetches its live part
    on the stream's event). The latency runs from just before the crossing order is
    sent, so it includes the request, the matching and the commit: an upper bound of
    the time from commit to the page."""
    from playwright.async_api import async_playwright

    sys.path.insert(0, str(TESTS))
    from web.browser import CHROMIUM, CHROMIUM_ARGS

    (_, seller_email), (_, buyer_email) = seeded["users"][0], seeded["users"][1]
    watchers = [
        ("/me/orders (seller)", seller_email, "/me/orders"),
        ("/me/orders (buyer)", buyer_email, "/me/orders"),
        ("/market/main (public)", None, "/market/main"),
        ("/operator/epochs (operator)", seeded["operator"], "/operator/epochs"),
    ]
    server, serving, base = await _serve(app)
    samples: dict[str, list[float]] = {label: [] for label, _, _ in watchers}
    try:
        async with httpx.AsyncClient(base_url=base) as api:

            async def bearer(email: str) -> dict[str, str]:
                body = await api.post(
                    "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
                )
                return {"authorization": f"Bearer {body.json()['access_token']}"}

            op = await bearer(seeded["operator"])
            seller, buyer = await bearer(seller_email), await bearer(buyer_email)
            ids = {"seller": seeded["users"][0][0], "buyer": seeded["users"][1][0]}
            grant = await api.post(
                f"/api/v1/admin/users/{ids['seller']}/energy-grants",
                json={"qty_wh": 1_000 * trades},
                headers=op,
            )
            deposit = await api.post(
                f"/api/v1/admin/users/{ids['buyer']}/credit-deposits",
                json={"amount": 1_000_000 * trades},
                headers=op,
            )
            if grant.status_code != 200 or deposit.status_code != 200:
                raise SystemExit(f"bench: funding refused: {grant.text} {deposit.text}")
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=CHROMIUM_ARGS
                )
                pages = []
                for label, email, path in watchers:
                    ctx = await browser.new_context(base_url=base)
                    page = await ctx.new_page()
                    if email is not None:
                        await _sign_in(page, email)
                    await page.goto(path)
                    await page.wait_for_selector('#live-status[data-state="live"]')
                    await page.evaluate(SEEN_SCRIPT)
                    pages.append((label, page))
                await asyncio.sleep(1)  # every stream open and pinged
                for _ in range(trades):
                    sell = await api.post(
                        "/api/v1/orders",
                        json={
                            "side": "sell",
                            "zone": "main",
                            "qty_wh": 1_000,
                            "limit_price": 90_000,
                        },
                        headers=seller,
                    )
                    if sell.status_code != 201:
                        raise SystemExit(f"bench: sell refused: {sell.text}")
                    sent = time.time() * 1000
                    buy = await api.post(
                        "/api/v1/orders",
                        json={
                            "side": "buy",
                            "zone": "main",
                            "qty_wh": 1_000,
                            "limit_price": 200_000,
                        },
                        headers=buyer,
                    )
                    made = buy.json().get("trades") if buy.status_code == 201 else None
                    if not made:
                        raise SystemExit(f"bench: the buy did not trade: {buy.text}")
                    trade_id = made[0]["id"]
                    for label, page in pages:
                        seen = await page.wait_for_function(
                            "(id) => window.__wattxSeen && window.__wattxSeen[id]",
                            arg=trade_id,
                            timeout=10_000,
                            polling=50,
                        )
                        samples[label].append(round(float(await seen.json_value()) - sent, 1))
                    await asyncio.sleep(0.3)
                await browser.close()
    finally:
        server.should_exit = True
        await serving
    per_page = []
    for label, ms in samples.items():
        p50, p95, top = _percentiles(ms)
        per_page.append(PageLatency(page=label, ms=ms, p50_ms=p50, p95_ms=p95, max_ms=top))
    every = [x for ms in samples.values() for x in ms]
    p50, p95, top = _percentiles(every)
    return Latency(
        trades=trades,
        pages=list(samples),
        ms=every,
        p50_ms=p50,
        p95_ms=p95,
        max_ms=top,
        per_page=per_page,
    )


def _table(result: Result) -> str:
    lines = [
        f"{result.households} households, {result.epochs} epochs, {result.energy_rows:,} "
        f"meter-epoch rows, {result.trades:,} trades, {result.journal_rows:,} journal rows "
        f"(seeded in {result.seed_s} s)",
        "",
        f"{'page':<36} {'viewer':<10} {'status':>6} {'median ms':>10} {'p95 ms':>8} {'KiB':>7}",
    ]
    for p in result.pages:
        lines.append(
            f"{p.page:<36} {p.viewer:<10} {p.status:>6} {p.median_ms:>10.1f} {p.p95_ms:>8.1f} "
            f"{p.bytes / 1024:>7.1f}"
        )
    lines += [
        "",
        f"first visit JavaScript: {result.js_files} files, {result.js_bytes / 1024:.1f} KiB, "
        f"{result.js_gzip_bytes / 1024:.1f} KiB gzipped",
    ]
    if result.phone is not None:
        phone = result.phone
        lines += [
            f"/me on an emulated phone ({phone.emulation}): LCP median "
            f"{phone.lcp_median_ms:.0f} ms over {phone.runs} runs {phone.lcp_ms}; "
            f"{phone.transferred_js_gzip_bytes / 1024:.1f} KiB of JavaScript gzipped",
            f"axe-core (WCAG 2.2 AA tags) on /me: {phone.axe_serious_or_critical} serious or "
            f"critical violations {phone.axe_rules or ''}",
        ]
    if result.latency is not None:
        lat = result.latency
        lines.append(
            f"live latency, crossing order sent → trade on {len(lat.pages)} open pages: "
            f"p50 {lat.p50_ms:.0f} ms, p95 {lat.p95_ms:.0f} ms, max {lat.max_ms:.0f} ms "
            f"over {lat.trades} trades ({len(lat.ms)} appearances)"
        )
        for one in lat.per_page:
            lines.append(
                f"  {one.page:<30} p50 {one.p50_ms:>5.0f} ms, p95 {one.p95_ms:>5.0f} ms, "
                f"max {one.max_ms:>5.0f} ms"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=100)
    parser.add_argument("--trades", type=int, default=4, help="trades per household per day")
    parser.add_argument("--repeat", type=int, default=20, help="fetches per page")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--year", action="store_true", help="a year of data ending now instead of a month"
    )
    parser.add_argument(
        "--no-browser",
        dest="browser",
        action="store_false",
        help="skip the phone LCP and axe run (they need Chromium)",
    )
    parser.add_argument("--phone-runs", type=int, default=3, help="page loads on the phone")
    parser.add_argument(
        "--latency",
        type=int,
        default=20,
        help="trades timed from order to four open pages (0: skip; needs the browser)",
    )
    args = parser.parse_args()
    if args.households < 2 or args.repeat < 1 or args.trades < 0 or args.latency < 0:
        parser.error(
            "--households must be at least 2, --repeat at least 1, --trades and --latency "
            "at least 0"
        )
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(asdict(result), indent=2))
    else:
        print(_table(result))


if __name__ == "__main__":
    main()
