"""Server-sent events through a real HTTP server: filtering, order, keep-alive, resume."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI

from service.conftest import in_process_app
from wattx.config import Settings
from wattx.services.principal import Role

from .client import ApiClient, User
from .conftest import ManualClock
from .helpers import FLAT_ZONE
from .live import serving


async def _events(
    http: httpx.AsyncClient, user: User, *, last_id: int | None = None
) -> AsyncIterator[dict[str, Any]]:
    headers = dict(user.headers)
    if last_id is not None:
        headers["Last-Event-ID"] = str(last_id)
    async with http.stream("GET", "/api/v1/events", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        # The stream's own cache rule stands, though the request carried credentials.
        assert response.headers.get_list("cache-control") == ["no-cache"]
        current: dict[str, Any] = {}
        async for line in response.aiter_lines():
            if line.startswith(":"):
                yield {"comment": line}
            elif line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
            elif line == "" and current:
                yield current
                current = {}


async def _collect(stream: AsyncIterator[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async for item in stream:
        if "event" in item:
            found.append(item)
            if len(found) == count:
                break
    return found


async def test_sse_filters_orders_and_resumes(settings: Settings, clock: ManualClock) -> None:
    app: FastAPI = in_process_app(settings, clock=clock, run_epoch_clock=False)
    async with serving(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        api = ApiClient(http, app.state.wattx)
        op = await api.operator()
        assert (await http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)).is_success
        seller = await api.signup(Role.PROSUMER)
        buyer = await api.signup(Role.CONSUMER)
        await api.fund(seller, energy_wh=5_000)
        await api.fund(buyer, credit=5_000_000)

        seller_stream = _events(http, seller)
        first = await anext(seller_stream)
        assert first["comment"].startswith(": connected")
        seller_task = asyncio.create_task(_collect(seller_stream, 4))
        await asyncio.sleep(0.1)
        sell = await api.order(seller, side="sell", qty_wh=1_000, limit_price=90_000, zone="main")
        buy = await api.order(buyer, side="buy", qty_wh=500, limit_price=200_000, zone="main")
        seen = await asyncio.wait_for(seller_task, timeout=10)
        kinds = [e["event"] for e in seen]
        # The buyer's own order.created is not shown to the seller.
        assert kinds == ["order.created", "book.updated", "trade.executed", "book.updated"]
        assert seen[0]["data"]["data"]["id"] == sell.json()["order"]["id"]
        assert seen[2]["data"]["data"]["id"] == buy.json()["trades"][0]["id"]
        # A trade shows the seller its own side only: the buyer is a stranger.
        trade = seen[2]["data"]["data"]
        assert (trade["seller"], trade["buyer"], trade["buy_order_id"]) == (seller.id, None, None)
        ids = [e["id"] for e in seen]
        assert ids == sorted(ids)

        # Resume after the first event: the rest arrives again, in order.
        resumed = await asyncio.wait_for(
            _collect(_events(http, seller, last_id=ids[0]), 3), timeout=10
        )
        assert [e["id"] for e in resumed] == ids[1:]

        # Operators see the buyer's order too.
        op_seen = await asyncio.wait_for(_collect(_events(http, op, last_id=0), 5), timeout=10)
        assert "order.created" in [e["event"] for e in op_seen]
        assert len([e for e in op_seen if e["event"] == "order.created"]) == 2
        (op_trade,) = [e["data"]["data"] for e in op_seen if e["event"] == "trade.executed"]
        assert (op_trade["seller"], op_trade["buyer"]) == (seller.id, buyer.id)


async def test_sse_keepalive_and_query_token(settings: Settings, clock: ManualClock) -> None:
    app: FastAPI = in_process_app(settings, clock=clock, run_epoch_clock=False)
    async with serving(app) as base_url, httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        api = ApiClient(http, app.state.wattx)
        user = await api.signup(Role.CONSUMER)
        url = f"/api/v1/events?access_token={user.access_token}"
        async with http.stream("GET", url) as response:
            assert response.status_code == 200
            lines = response.aiter_lines()
            assert (await anext(lines)).startswith(": connected")
            assert await anext(lines) == ""
            keepalive = await asyncio.wait_for(anext(lines), timeout=5)
            assert keepalive == ": keep-alive"
