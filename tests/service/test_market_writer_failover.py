"""Two real `wattx up` replicas on one PostgreSQL database elect one market writer;
the writer is killed with SIGKILL while clients submit orders to both; the other
replica takes over, and every order answered 201 is stored and in its books once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from service.live import Up, wattx_cli
from support.pg import private_database

PASSWORD = "correct horse battery staple"
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


READY_WITHIN_S = 420.0
"""Start-up deploys the contracts: minutes on a loaded shared machine."""


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[tuple[Up, Up, str]]:
    with private_database("wattx_writer") as name:
        dsn = f"postgresql://postgres@127.0.0.1:5432/{name}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("WATTX_")}
        env.update(
            WATTX_DATA_DIR=str(tmp_path / "data"),
            WATTX_DATABASE_URL=f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}",
            # Redis is shared with other clients: this test's channels and keys are
            # under a prefix of its own.
            WATTX_REDIS_URL="redis://127.0.0.1:6379/0",
            WATTX_REDIS_PREFIX=f"wattx-test-{uuid.uuid4().hex}",
            WATTX_LOG_LEVEL="WARNING",
            WATTX_MARKET_WRITER="elect",
            WATTX_EPOCH_LENGTH_S="86400",
            WATTX_GATE_CLOSURE_LEAD_S="0",
            WATTX_RATE_LIMIT_AUTH_PER_WINDOW="100000",
            WATTX_RATE_LIMIT_DEFAULT_PER_WINDOW="100000000",
            WATTX_JWT_SECRET=uuid.uuid4().hex,
        )
        for args in (
            ("db", "upgrade"),
            ("admin", "create-operator", "--email", "op@wattx.test", "--password", PASSWORD),
        ):
            done = subprocess.run(wattx_cli(*args), env=env, capture_output=True, check=False)
            assert done.returncode == 0, done.stderr.decode()
        first = Up(env, tmp_path / "first.log")
        try:
            first.wait_ready(READY_WITHIN_S)
            second = Up(env, tmp_path / "second.log")
            try:
                second.wait_ready(READY_WITHIN_S)
                yield first, second, dsn
            finally:
                second.stop()
        finally:
            first.stop()


async def _writer_pid(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT term, holder FROM market_writer WHERE scope = 'market'")
    finally:
        await conn.close()
    assert row is not None
    return int(row["term"]), int(str(row["holder"]).rsplit(":", 1)[1])


async def _participants(http: httpx.AsyncClient, count: int) -> list[tuple[str, str]]:
    login = await http.post(
        "/api/v1/auth/login", json={"email": "op@wattx.test", "password": PASSWORD}
    )
    assert login.status_code == 200, login.text
    op = {"Authorization": f"Bearer {login.json()['access_token']}"}
    made = []
    for i in range(count):
        side = "sell" if i % 2 == 0 else "buy"
        email = f"p{i}-{uuid.uuid4().hex[:8]}@wattx.test"
        signup = await http.post(
            "/api/v1/auth/signup",
            json={
                "email": email,
                "password": PASSWORD,
                "display_name": email,
                "role": "prosumer" if side == "sell" else "consumer",
            },
        )
        assert signup.status_code == 201, signup.text
        user = signup.json()["id"]
        admitted = await http.patch(
            f"/api/v1/admin/users/{user}", json={"status": "admitted"}, headers=op
        )
        assert admitted.status_code == 200, admitted.text
        grant = (
            ("energy-grants", {"qty_wh": 10**9})
            if side == "sell"
            else ("credit-deposits", {"amount": 10**13})
        )
        funded = await http.post(
            f"/api/v1/admin/users/{user}/{grant[0]}", json=grant[1], headers=op
        )
        assert funded.status_code in (200, 201), funded.text
        token = await http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        made.append((side, token.json()["access_token"]))
    return made


class Stream:
    """Clients submitting orders to both replicas, and what was acknowledged."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.dead: set[str] = set()
        self.acknowledged: dict[str, str] = {}  # client order id -> order id
        self.unanswered: list[tuple[str, dict[str, object]]] = []

    async def client(
        self, index: int, side: str, token: str, mid: int, stop: asyncio.Event
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        n = 0
        async with httpx.AsyncClient(timeout=60, headers=headers) as http:
            while not stop.is_set():
                n += 1
                live = [u for u in self.urls if u not in self.dead]
                url = live[(index + n) % len(live)]
                client_id = f"c{index}-{n}"
                # Prices cross now and then, so trades are made too.
                offset = ((n + index) % 9) * 2_000 - 8_000  # nine price levels a side
                price = mid - offset if side == "buy" else mid + offset
                body: dict[str, object] = {
                    "side": side,
                    "qty_wh": 10 + n % 50,
                    "limit_price": price,
                    "zone": "main",
                    "client_order_id": client_id,
                }
                key = f"key-{client_id}"
                try:
                    answer = await http.post(
                        f"{url}/api/v1/orders", json=body, headers={"Idempotency-Key": key}
                    )
                except httpx.TransportError:
                    # The replica died with the request: not acknowledged, sent again later.
                    self.dead.add(url)
                    self.unanswered.append((key, body))
                    continue
                if answer.status_code == 503:
                    self.unanswered.append((key, body))
                    continue
                assert answer.status_code == 201, answer.text
                self.acknowledged[client_id] = answer.json()["order"]["id"]


async def test_the_other_replica_takes_over_when_the_writer_is_killed(
    replicas: tuple[Up, Up, str],
) -> None:
    first, second, dsn = replicas
    term, pid = await _writer_pid(dsn)
    writer, survivor = (first, second) if first.process.pid == pid else (second, first)
    assert writer.process.pid == pid, "the writer is one of the two replicas"

    async with httpx.AsyncClient(base_url=survivor.url, timeout=30) as http:
        people = await _participants(http, 6)
        zone = await http.get(
            "/api/v1/zones/main", headers={"Authorization": f"Bearer {people[0][1]}"}
        )
        bands = zone.json()["tariff"]
        mid = (max(b["feed_in"] for b in bands) + min(b["retail"] for b in bands)) // 2

    stream = Stream([first.url, second.url])
    stop = asyncio.Event()
    clients = [
        asyncio.create_task(stream.client(i, side, token, mid, stop))
        for i, (side, token) in enumerate(people)
    ]
    try:
        # Mid-stream: once both replicas have answered orders.
        while len(stream.acknowledged) < 60:
            await asyncio.sleep(0.05)
            assert not any(c.done() for c in clients), [c.exception() for c in clients]
        before_kill = len(stream.acknowledged)
        os.kill(writer.process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        writer.process.wait(timeout=10)
        # The survivor takes the lock and raises the term.
        while (await _writer_pid(dsn))[0] == term:
            await asyncio.sleep(0.05)
            assert time.monotonic() - killed_at < 30, "no replica took over"
            assert not any(c.done() for c in clients), [c.exception() for c in clients]
        takeover_s = time.monotonic() - killed_at
        target = len(stream.acknowledged) + 60
        while len(stream.acknowledged) < target:
            await asyncio.sleep(0.05)
            assert not any(c.done() for c in clients), [c.exception() for c in clients]
    finally:
        stop.set()
        await asyncio.gather(*clients, return_exceptions=True)
    for client in clients:
        assert client.exception() is None
    print(f"takeover after {takeover_s:.2f} s; {before_kill} orders before the kill")

    new_term, new_pid = await _writer_pid(dsn)
    assert new_pid == survivor.process.pid
    assert new_term > term
    assert takeover_s < 15

    tokens = {f"c{i}": token for i, (_side, token) in enumerate(people)}
    async with httpx.AsyncClient(base_url=survivor.url, timeout=60) as http:
        # What went unanswered is sent again with its key: placed at most once.
        for key, body in stream.unanswered:
            client_id = str(body["client_order_id"])
            owner = client_id.split("-")[0]
            again = await http.post(
                "/api/v1/orders",
                json=body,
                headers={"Authorization": f"Bearer {tokens[owner]}", "Idempotency-Key": key},
            )
            assert again.status_code == 201, again.text
            order_id = again.json()["order"]["id"]
            assert stream.acknowledged.setdefault(client_id, order_id) == order_id

        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch("SELECT id, client_order_id FROM orders")
            pending = await conn.fetchval(
                "SELECT count(*) FROM market_inbox WHERE status = 'pending'"
            )
            open_rows = await conn.fetch(
                "SELECT side, sum(qty_wh - filled_wh - cancelled_wh) AS open_wh FROM orders"
                " WHERE status IN ('open', 'partially_filled') GROUP BY side"
            )
            trade_count = await conn.fetchval("SELECT count(*) FROM trades")
            open_orders = await conn.fetchval(
                "SELECT count(*) FROM orders WHERE status IN ('open', 'partially_filled')"
            )
        finally:
            await conn.close()
        stored = {r["client_order_id"]: r["id"] for r in rows}
        # Every acknowledged order is stored, once, under the id it was answered with.
        assert len(rows) == len(stored) == len(stream.acknowledged)
        assert stored == stream.acknowledged
        assert pending == 0

        # The new writer's books are the database's: the open quantity on each side.
        book = await http.get(
            "/api/v1/markets/main/book",
            params={"levels": 100},
            headers={"Authorization": f"Bearer {people[0][1]}"},
        )
        assert book.status_code == 200, book.text
        open_wh = {r["side"]: int(r["open_wh"]) for r in open_rows}
        asks = sum(level["qty_wh"] for level in book.json()["asks"])
        assert asks == open_wh.get("sell", 0)
        levels = book.json()["asks"] + book.json()["bids"]
        assert sum(level["orders"] for level in levels) == open_orders
        trades = await http.get(
            "/api/v1/trades",
            params={"limit": 100},
            headers={"Authorization": f"Bearer {people[1][1]}"},
        )
        assert trades.status_code == 200, trades.text
        assert trade_count > 0
        # Each trade once: the buyer's list and the database agree.
        listed = [t["id"] for t in trades.json()["items"]]
        assert len(listed) == len(set(listed))
