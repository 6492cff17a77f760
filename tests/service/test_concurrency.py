"""No lost update: concurrent writers on one balance all count, and escrow never overdraws."""

from __future__ import annotations

import asyncio

from wattx.domain import Side
from wattx.market import escrow_required
from wattx.services.principal import Role

from .client import ApiClient
from .helpers import FLAT_ZONE


async def test_concurrent_deposits_all_count(api: ApiClient) -> None:
    user = await api.signup(Role.CONSUMER)
    await api.operator()
    deposits = [1_000 + i for i in range(40)]
    await asyncio.gather(*(api.state.wallet.deposit_credit(user.id, amount) for amount in deposits))
    assert (await api.wallet(user))["credit"] == {"free": sum(deposits), "locked": 0}


async def test_concurrent_orders_never_overdraw_escrow(api: ApiClient) -> None:
    op = await api.operator()
    assert (await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)).is_success
    buyer = await api.signup(Role.CONSUMER)
    per_order = escrow_required(Side.BUY, 1_000, 100_000, api.state.market.fee_bps)
    await api.fund(buyer, credit=per_order * 7 + per_order // 2)
    body = {"side": "buy", "qty_wh": 1_000, "limit_price": 100_000, "zone": "main"}
    results = await asyncio.gather(*(api.order(buyer, **body) for _ in range(20)))
    accepted = [r for r in results if r.status_code == 201]
    refused = [r for r in results if r.status_code == 409]
    assert len(accepted) == 7
    assert len(refused) == 13
    assert all(r.json()["code"] == "insufficient_balance" for r in refused)
    wallet = await api.wallet(buyer)
    assert wallet["credit"] == {"free": per_order // 2, "locked": per_order * 7}


async def test_concurrent_deposits_and_orders_interleave_without_loss(api: ApiClient) -> None:
    op = await api.operator()
    assert (await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)).is_success
    seller = await api.signup(Role.PROSUMER)
    await api.fund(seller, energy_wh=10_000)
    body = {"side": "sell", "qty_wh": 100, "limit_price": 100_000, "zone": "main"}
    grants = [api.state.wallet.grant_energy(seller.id, 50) for _ in range(20)]
    orders = [api.order(seller, **body) for _ in range(20)]
    await asyncio.gather(*grants, *orders)
    wallet = await api.wallet(seller)
    assert wallet["energy"] == {"free": 10_000 + 20 * 50 - 20 * 100, "locked": 20 * 100}
