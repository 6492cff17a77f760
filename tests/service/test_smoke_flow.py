"""The main flow through HTTP: sign-up, admission, meter, funding, orders, trade, clearing."""

from __future__ import annotations

from wattx.services.principal import Role

from .client import ApiClient

PUBLIC_KEY_HEX = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"


async def test_continuous_trade_moves_escrow_and_is_visible_to_both(api: ApiClient) -> None:
    seller = await api.signup(Role.PROSUMER)
    buyer = await api.signup(Role.CONSUMER)
    meter = await api.http.post(
        "/api/v1/meters",
        json={
            "serial": "M-1",
            "zone_id": "main",
            "rated_capacity_w": 5000,
            "public_key": PUBLIC_KEY_HEX,
        },
        headers=seller.headers,
    )
    assert meter.status_code == 404  # no zone yet
    op = await api.operator()
    zone = await api.http.post(
        "/api/v1/zones",
        json={
            "id": "main",
            "name": "Main feeder",
            "tariff": [{"start_hour": 0, "feed_in": 50_000, "retail": 300_000}],
        },
        headers=op.headers,
    )
    assert zone.status_code == 201, zone.text
    meter = await api.http.post(
        "/api/v1/meters",
        json={
            "serial": "M-1",
            "zone_id": "main",
            "rated_capacity_w": 5000,
            "public_key": PUBLIC_KEY_HEX,
        },
        headers=seller.headers,
    )
    assert meter.status_code == 201, meter.text
    await api.fund(seller, energy_wh=10_000)
    await api.fund(buyer, credit=10_000_000)

    sell = await api.order(seller, side="sell", qty_wh=2_000, limit_price=100_000, zone="main")
    assert sell.status_code == 201, sell.text
    assert (await api.wallet(seller))["energy"] == {"free": 8_000, "locked": 2_000}
    buy = await api.order(buyer, side="buy", qty_wh=1_000, limit_price=200_000, zone="main")
    assert buy.status_code == 201, buy.text
    trades = buy.json()["trades"]
    assert len(trades) == 1
    trade = trades[0]
    assert trade["price"] == 100_000

    for user in (seller, buyer):
        listed = await api.http.get("/api/v1/trades", headers=user.headers)
        assert [t["id"] for t in listed.json()["items"]] == [trade["id"]]
    buyer_wallet = await api.wallet(buyer)
    assert buyer_wallet["energy"]["free"] == trade["delivered_wh"]
    paid = trade["value"] + trade["wheeling_fee"] + trade["buyer_fee"]
    assert buyer_wallet["credit"] == {"free": 10_000_000 - paid, "locked": 0}
    seller_wallet = await api.wallet(seller)
    assert seller_wallet["credit"]["free"] == trade["value"] - trade["seller_fee"]
    assert seller_wallet["energy"] == {"free": 8_000, "locked": 2_000 - trade["qty_wh"]}
