"""``GET /epochs`` counts every trade of a closed epoch, continuous ones included."""

from __future__ import annotations

from service.client import ApiClient
from service.helpers import FLAT_ZONE
from wattx.services.principal import Role


async def test_closed_epoch_counts_its_continuous_trades(api: ApiClient) -> None:
    op = await api.operator()
    assert (await api.http.post("/api/v1/zones", json=FLAT_ZONE, headers=op.headers)).is_success
    seller = await api.signup(Role.PROSUMER)
    buyer = await api.signup(Role.CONSUMER)
    await api.fund(seller, energy_wh=10_000)
    await api.fund(buyer, credit=50_000_000)
    sell = await api.order(seller, side="sell", qty_wh=3_000, limit_price=100_000, zone="main")
    assert sell.status_code == 201, sell.text
    epoch_id = sell.json()["order"]["epoch_id"]
    trade_ids = []
    for _ in range(3):
        buy = await api.order(buyer, side="buy", qty_wh=1_000, limit_price=200_000, zone="main")
        assert buy.status_code == 201, buy.text
        trade_ids += [t["id"] for t in buy.json()["trades"]]
    assert len(trade_ids) == 3
    closed = await api.http.post(f"/api/v1/epochs/{epoch_id}/close", headers=op.headers)
    assert closed.status_code == 200, closed.text
    assert closed.json()["trades"] == []  # all three traded before the gate closed

    epochs = (await api.http.get("/api/v1/epochs", headers=op.headers)).json()
    (row,) = [e for e in epochs["closed"] if e["id"] == epoch_id]
    assert row["trade_count"] == 3
