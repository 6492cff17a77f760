"""When the database cannot be reached or written: requests answer 503 with a problem,
readiness says so, the market never runs ahead of the database, and a gate closure that
failed is retried until the epoch closes and its escrow is released."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import event

from service.conftest import in_process_app
from support.pg import PG_ADMIN_DSN, asyncpg_url, private_database
from wattx.config import Settings
from wattx.services.principal import Role
from wattx.services.trading.epoch_clock import EpochClockTask
from wattx.store import Database, space, upgrade_to_head

from .client import ApiClient, User
from .conftest import ManualClock
from .helpers import FLAT_ZONE, assert_problem


def _settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        jwt_secret="test-secret-key-of-sufficient-length",
        rate_limit_auth_per_window=10_000,
        rate_limit_default_per_window=100_000,
        log_level="WARNING",
    )


@asynccontextmanager
async def _service(settings: Settings, clock: ManualClock) -> AsyncIterator[ApiClient]:
    db = Database(settings.effective_database_url)
    await upgrade_to_head(db)
    await db.dispose()
    app = in_process_app(settings, clock=clock, run_epoch_clock=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://wattx.test") as http:
            yield ApiClient(http, app.state.wattx)


async def _market(api: ApiClient) -> tuple[User, User]:
    op = await api.operator()
    assert (await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)).is_success
    seller = await api.signup(Role.PROSUMER)
    buyer = await api.signup(Role.CONSUMER)
    await api.fund(seller, energy_wh=5_000)
    await api.fund(buyer, credit=5_000_000)
    return seller, buyer


@pytest.fixture
def private_pg() -> Iterator[str]:
    """A database of its own, which the test may close to every connection."""
    with private_database("wattx_outage") as name:
        yield name


async def _allow_connections(name: str, allowed: bool) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')
        if not allowed:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
            )
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_database_outage_answers_503_and_the_gate_closes_after_recovery(
    tmp_path: Path, private_pg: str
) -> None:
    clock = ManualClock()
    url = asyncpg_url(private_pg)
    async with _service(_settings(tmp_path, url), clock) as api:
        market = api.state.market
        seller, buyer = await _market(api)
        epoch_id = market.schedule.first_open_epoch(clock.now())
        sell = await api.order(
            seller, side="sell", qty_wh=1_000, limit_price=90_000, zone="main", epoch_id=epoch_id
        )
        assert sell.status_code == 201, sell.text
        buy = await api.order(
            buyer, side="buy", qty_wh=400, limit_price=200_000, zone="main", epoch_id=epoch_id
        )
        assert buy.status_code == 201, buy.text
        # Sold: 400 Wh and the same-zone loss; the rest stays locked by the open order.
        before = (await api.wallet(seller))["energy"]
        assert before["free"] == 4_000
        assert 0 < before["locked"] < 600

        await _allow_connections(private_pg, False)
        # The gate time passes during the outage: the closure fails, and so does
        # the rebuild of the books it had already changed.
        clock.current = market.schedule.epoch(epoch_id).gate_closure + timedelta(seconds=1)
        clock_task = EpochClockTask(market, tick_s=1.0)
        await clock_task.run_round()
        next_epoch = market.schedule.first_open_epoch(clock.now())
        during: list[httpx.Response] = [
            await api.order(
                buyer, side="buy", qty_wh=100, limit_price=200_000, zone="main",
                epoch_id=next_epoch,
            ),
            await api.http.get("/api/v1/wallet", headers=seller.headers),
            await api.http.get("/api/v1/markets/main/book", headers=seller.headers),
            await api.http.post(
                "/api/v1/auth/login", json={"email": seller.email, "password": "whatever"}
            ),
        ]  # fmt: skip
        for response in during:
            assert_problem(response, 503, "storage_unavailable")
            assert response.headers["Retry-After"] == "5"
        ready = await api.http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["database"] is False
        # Still down: the clock keeps trying, and keeps failing, without harm.
        await clock_task.run_round()

        await _allow_connections(private_pg, True)
        await clock_task.run_round()
        op = await api.operator()
        listed = await api.http.get("/api/v1/epochs", headers=op.headers)
        assert listed.status_code == 200, listed.text
        epochs = listed.json()
        assert epoch_id in [e["id"] for e in epochs["closed"]], epochs
        seller_order = await api.http.get(
            f"/api/v1/orders/{sell.json()['order']['id']}", headers=seller.headers
        )
        assert seller_order.json()["status"] == "expired"
        # What was not sold came back to the seller.
        assert (await api.wallet(seller))["energy"] == {
            "free": before["free"] + before["locked"],
            "locked": 0,
        }
        assert (await api.wallet(buyer))["credit"]["locked"] == 0
        # Nothing of the refused submission was stored.
        mine = await api.http.get("/api/v1/orders", headers=buyer.headers)
        assert [o["qty_wh"] for o in mine.json()["items"]] == [400]
        assert (await api.http.get("/readyz")).status_code == 200
        again = await api.order(
            buyer, side="buy", qty_wh=100, limit_price=200_000, zone="main", epoch_id=next_epoch
        )
        assert again.status_code == 201, again.text


async def test_a_full_sqlite_database_answers_503_and_readiness_reports_it(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    url = f"sqlite+aiosqlite:///{tmp_path / 'wattx.sqlite3'}"
    async with _service(_settings(tmp_path, url), clock) as api:
        seller, _buyer = await _market(api)
        assert (await api.http.get("/readyz")).status_code == 200
        db = api.state.db

        # The database may not grow any more: SQLite's "database or disk is full".
        def full(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA max_page_count = 1")  # cannot shrink: stays at its size
            cursor.close()

        event.listen(db.write_engine.sync_engine, "connect", full)
        await db.write_engine.dispose()
        accepted = 0
        refused: httpx.Response | None = None
        for n in range(500):
            r = await api.order(seller, side="sell", qty_wh=1, limit_price=90_000 + n, zone="main")
            if r.status_code != 201:
                refused = r
                break
            accepted += 1
        assert refused is not None, "the database never filled up"
        assert_problem(refused, 503, "storage_unavailable")
        ready = await api.http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["database"] is True
        assert ready.json()["storage_writable"] is False
        # The engine was rebuilt from the database: the refused order is nowhere.
        assert len(api.state.market.open_orders()) == accepted

        event.remove(db.write_engine.sync_engine, "connect", full)
        await db.write_engine.dispose()
        r = await api.order(seller, side="sell", qty_wh=1, limit_price=80_000, zone="main")
        assert r.status_code == 201, r.text
        assert (await api.http.get("/readyz")).status_code == 200
        assert len(api.state.market.open_orders()) == accepted + 1


async def test_readiness_reports_a_full_disk_while_some_writes_still_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a full disk SQLite still commits what fits in its WAL's reused pages, and each
    # such commit cleared the failed write that readiness went by: /readyz flapped to
    # 200 while orders were refused. The free space itself now counts.
    clock = ManualClock()
    url = f"sqlite+aiosqlite:///{tmp_path / 'wattx.sqlite3'}"
    async with _service(_settings(tmp_path, url), clock) as api:
        seller, _buyer = await _market(api)
        assert (await api.http.get("/readyz")).status_code == 200
        looked_at: list[Path] = []

        def no_space(path: Path) -> int:
            looked_at.append(path)
            return space.MIN_FREE_BYTES - 1

        monkeypatch.setattr(space, "free_bytes", no_space)
        r = await api.order(seller, side="sell", qty_wh=1, limit_price=90_000, zone="main")
        assert r.status_code == 201, r.text  # this write fit
        ready = await api.http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["database"] is True
        assert ready.json()["storage_writable"] is False
        # The database's directory and the data directory (the embedded chain's journal).
        assert tmp_path in looked_at

        monkeypatch.undo()
        assert (await api.http.get("/readyz")).status_code == 200


def test_space_left_on_a_real_directory_and_on_a_missing_one(tmp_path: Path) -> None:
    assert space.free_bytes(tmp_path) > 0
    assert space.space_left([tmp_path]) == (space.free_bytes(tmp_path) >= space.MIN_FREE_BYTES)
    assert space.space_left([tmp_path / "missing"]) is False
    assert space.space_left([]) is True
