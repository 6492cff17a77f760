"""The operator's emergency pause through the API (SQLite and PostgreSQL): the paused
zone refuses new orders and amendments with a code and no change, cancels still work,
GET /markets shows the pause, the audit log holds pause and resume, and only an
operator may do either."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from service.client import ApiClient
from service.helpers import FLAT_ZONE, assert_problem
from wattx.api.state import AppState
from wattx.services.principal import Role


async def _markets(api: ApiClient, headers: dict[str, str]) -> dict[str, Any]:
    r = await api.http.get("/api/v1/markets", headers=headers)
    assert r.status_code == 200, r.text
    return {m["zone"]: m for m in r.json()["markets"]}


async def _market_events(api: ApiClient) -> list[tuple[str, dict[str, Any]]]:
    """The ``market.paused``/``market.resumed`` events a participant's SSE stream carries."""
    await asyncio.sleep(0.05)  # the hub's pump takes events off the bus
    found = []
    stream = api.state.events.stream(
        user_id="someone", sees_everything=False, last_event_id=0, keepalive_s=0.05
    )
    async for frame in stream:
        if frame.startswith(": keep-alive"):
            break
        if "event: market." in frame:
            kind = frame.split("event: ", 1)[1].split("\n", 1)[0]
            found.append((kind, json.loads(frame.split("data: ", 1)[1])["data"]))
    return found


async def test_a_paused_market_takes_no_orders_until_resumed(
    api: ApiClient, state: AppState
) -> None:
    op = await api.operator()
    r = await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)
    assert r.status_code == 201, r.text
    buyer = await api.signup(Role.CONSUMER)
    await api.fund(buyer, credit=10_000_000)
    resting = await api.order(buyer, side="buy", qty_wh=100, limit_price=100_000, zone="main")
    assert resting.status_code == 201, resting.text
    resting_id = resting.json()["order"]["id"]
    assert (await _markets(api, buyer.headers))["main"]["paused"] is None

    # Only the operator pauses; a trader's try changes nothing.
    denied = await api.http.post(
        "/api/v1/markets/main/pause", json={"reason": "me"}, headers=buyer.headers
    )
    assert_problem(denied, 403, "forbidden")
    unknown = await api.http.post(
        "/api/v1/markets/elsewhere/pause", json={"reason": "fault"}, headers=op.headers
    )
    assert_problem(unknown, 422, "unknown_zone")
    empty = await api.http.post("/api/v1/markets/main/pause", json={}, headers=op.headers)
    assert_problem(empty, 422, "validation_error")
    assert (await _markets(api, buyer.headers))["main"]["paused"] is None

    paused = await api.http.post(
        "/api/v1/markets/main/pause",
        json={"reason": "transformer fault on the main feeder"},
        headers=op.headers,
    )
    assert paused.status_code == 200, paused.text
    assert paused.json()["paused_by"] == op.id
    shown = (await _markets(api, buyer.headers))["main"]["paused"]
    assert shown["reason"] == "transformer fault on the main feeder"
    again = await api.http.post(
        "/api/v1/markets/main/pause", json={"reason": "twice"}, headers=op.headers
    )
    assert_problem(again, 409, "market_already_paused")

    wallet = await api.wallet(buyer)
    refused = await api.order(buyer, side="buy", qty_wh=100, limit_price=100_000, zone="main")
    assert_problem(refused, 409, "market_paused")
    assert refused.json()["context"]["reason"] == "transformer fault on the main feeder"
    amend = await api.http.patch(
        f"/api/v1/orders/{resting_id}", json={"qty_wh": 50}, headers=buyer.headers
    )
    assert_problem(amend, 409, "market_paused")
    assert await api.wallet(buyer) == wallet
    orders = await api.http.get("/api/v1/orders", headers=buyer.headers)
    assert [o["id"] for o in orders.json()["items"]] == [resting_id]
    # Leaving the market still works.
    cancelled = await api.http.delete(f"/api/v1/orders/{resting_id}", headers=buyer.headers)
    assert cancelled.status_code == 200, cancelled.text

    # A restart keeps the pause (it is stored, not only in memory).
    await state.market.reload_zones()
    assert_problem(
        await api.order(buyer, side="buy", qty_wh=100, limit_price=100_000, zone="main"),
        409,
        "market_paused",
    )

    denied = await api.http.post("/api/v1/markets/main/resume", headers=buyer.headers)
    assert_problem(denied, 403, "forbidden")
    resumed = await api.http.post("/api/v1/markets/main/resume", headers=op.headers)
    assert resumed.status_code == 204, resumed.text
    assert (await _markets(api, buyer.headers))["main"]["paused"] is None
    twice = await api.http.post("/api/v1/markets/main/resume", headers=op.headers)
    assert_problem(twice, 409, "market_not_paused")
    # Both changes reached the public event stream once each; refusals published nothing.
    events = await _market_events(api)
    assert [(kind, data["zone"]) for kind, data in events] == [
        ("market.paused", "main"),
        ("market.resumed", "main"),
    ]
    assert events[0][1]["reason"] == "transformer fault on the main feeder"
    placed = await api.order(buyer, side="buy", qty_wh=100, limit_price=100_000, zone="main")
    assert placed.status_code == 201, placed.text

    audit = await api.http.get("/api/v1/audit?target=zone:main", headers=op.headers)
    assert audit.status_code == 200, audit.text
    entries = sorted(audit.json()["items"], key=lambda e: e["seq"])
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("market.paused", op.id),
        ("market.resumed", op.id),
    ]
