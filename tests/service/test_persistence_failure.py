"""If storing the engine's work fails, nothing is acknowledged and the engine resyncs."""

from __future__ import annotations

from typing import Any

import pytest

from wattx.domain import Side
from wattx.services.principal import Role
from wattx.services.trading import market as market_module

from .client import ApiClient
from .helpers import FLAT_ZONE


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_failed_commit_leaves_no_trace(
    api: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    op = await api.operator()
    assert (await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)).is_success
    seller = await api.signup(Role.PROSUMER)
    await api.fund(seller, energy_wh=5_000)
    kept = await api.order(seller, side="sell", qty_wh=1_000, limit_price=90_000, zone="main")
    assert kept.status_code == 201
    real = market_module.EngineChanges.add

    async def failing(*args: Any, **kwargs: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(market_module.EngineChanges, "add", failing)
    with pytest.raises(OSError, match="disk full"):
        await api.state.market.submit(
            await api.state.accounts.authenticate(seller.access_token),
            market_module.OrderRequest(side=Side.SELL, qty_wh=500, zone="main", limit_price=91_000),
            idempotency_key=None,
        )
    monkeypatch.setattr(market_module.EngineChanges, "add", real)
    book = (await api.http.get("/api/v1/markets/main/book", headers=seller.headers)).json()
    assert book["asks"] == [{"price": 90_000, "qty_wh": 1_000, "orders": 1}]
    assert [o.id for o in api.state.market.open_orders()] == [kept.json()["order"]["id"]]
    assert (await api.wallet(seller))["energy"] == {"free": 4_000, "locked": 1_000}
    again = await api.order(seller, side="sell", qty_wh=500, limit_price=91_000, zone="main")
    assert again.status_code == 201
