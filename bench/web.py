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

Not measured here: largest contentful paint on an emulated phone (it needs the
browser; see docs/web.md).
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
from sqlalchemy import insert

from wattx.api.app import create_app
from wattx.api.state import AppState
from wattx.config import Settings
from wattx.store import Database, upgrade_to_head
from wattx.store.models import TradeRow
from wattx.store.models_metering import MeterEpochEnergyRow
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


async def _seed(app: Any, state: AppState, households: int, trades_per_day: int) -> dict[str, Any]:
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
    first = int(MONTH_START.timestamp()) // length
    last = int(NOW.timestamp()) // length
    epochs = range(first, last)
    energy: list[dict[str, Any]] = []
    for meter_index, meter_id in enumerate(meters):
        for epoch in epochs:
            hour = (epoch * length // 3600) % 24
            sun = max(0, 6 - abs(hour - 13)) * (300 + meter_index % 7 * 20)
            load = 150 + (meter_index * 37 + epoch) % 120
            energy.append(
                {
                    "meter_id": meter_id,
                    "epoch_id": epoch,
                    "import_wh": 0 if sun > load else load,
                    "export_wh": sun - load if sun > load else 0,
                    "verified_export_wh": sun - load if sun > load else 0,
                }
            )
    trades: list[dict[str, Any]] = []
    journal: list[dict[str, Any]] = []
    per_day = length and 86_400 // length
    seq = 0
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
    async with state.db.write() as session:
        for table, rows in (
            (MeterEpochEnergyRow, energy),
            (TradeRow, trades),
            (LedgerEntryRow, journal),
        ):
            for start in range(0, len(rows), 5_000):
                await session.execute(insert(table), rows[start : start + 5_000])
    return {
        "users": users,
        "operator": op_email,
        "epochs": len(epochs),
        "energy_rows": len(energy),
        "trades": len(trades),
        "journal_rows": len(journal),
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
            print("bench: seeding a month…", file=sys.stderr)
            started = time.perf_counter()
            seeded = await _seed(app, state, args.households, args.trades)
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
                        "/me/orders",
                        "/me/wallet",
                        "/me/statement?month=2026-06",
                        "/me/statement.csv?month=2026-06",
                    ],
                    args.repeat,
                )
                files, js_raw, js_gzip = await _javascript(home, (await home.get("/me")).text)
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
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=100)
    parser.add_argument("--trades", type=int, default=4, help="trades per household per day")
    parser.add_argument("--repeat", type=int, default=20, help="fetches per page")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    if args.households < 2 or args.repeat < 1 or args.trades < 0:
        parser.error("--households must be at least 2, --repeat at least 1, --trades at least 0")
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(asdict(result), indent=2))
    else:
        print(_table(result))


if __name__ == "__main__":
    main()
