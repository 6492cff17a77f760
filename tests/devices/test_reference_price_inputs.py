"""The reference price through HTTP, fed by the live data (docs/market.md, "Reference
price"): the book's open quantities, the batteries' reported state of charge, the zone
rate and the suppliers' measured deliveries. Each factor moves with its input as the
formulas say (SQLite and PostgreSQL, embedded chain)."""

from __future__ import annotations

from typing import Any

from chain_service.flow import record_export
from service.client import ApiClient, User
from service.conftest import ManualClock
from service.helpers import assert_problem

from .test_device_api import _devices
from .test_measured_settlement import _deliveries, _physical_epoch, _settle_after_grace

PPM = 1_000_000


async def _quote(api: ApiClient, user: User, **params: Any) -> dict[str, Any]:
    r = await api.http.get(
        "/api/v1/markets/main/reference-price", params=params, headers=user.headers
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _factor(quote: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [f for f in quote["factors"] if f["name"] == name]
    return dict(found)


def _product(quote: dict[str, Any]) -> int:
    price = int(quote["base"])
    for factor in quote["factors"]:
        price = price * factor["value_ppm"] // PPM
    return price


async def test_factors_move_with_the_book_the_batteries_and_the_deliveries(
    api: ApiClient, clock: ManualClock
) -> None:
    setup = await _physical_epoch(api, clock)
    market = setup.market
    # The seller's battery reports 8,000 of 10,000 Wh: storage to spare, cheaper.
    quote = await _quote(api, market.buyer)
    soc = _factor(quote, "state_of_charge")
    assert soc["inputs"] == {
        "soc_ppm": 800_000,
        "batteries": 1,
        "stored_wh": 8_000,
        "capacity_wh": 10_000,
    }
    assert soc["value_ppm"] == PPM + 200_000 * (500_000 - 800_000) // PPM  # 0.94
    assert (soc["min_ppm"], soc["max_ppm"], soc["clamped"]) == (900_000, 1_100_000, False)
    assert quote["base"] == 100_000  # the last trade's price
    assert quote["base_source"] == "last_trade"
    assert quote["price"] == _product(quote)
    # The same-zone rate (0.5 c/kWh, 1 %) is the distance premium inside the zone.
    distance = _factor(quote, "distance")
    assert distance["inputs"]["wheeling_per_kwh"] == 5_000
    assert distance["inputs"]["loss_bps"] == 100
    assert distance["value_ppm"] == (100_000 + 5_000) * PPM * 10_000 // (9_900 * 100_000)
    # No delivery measured yet: reliability is neutral.
    assert _factor(quote, "reliability")["value_ppm"] == PPM

    # The battery drains (its owner reports 2,000 Wh): scarcity, dearer.
    battery = next(d for d in await _devices(api, market.seller) if d["kind"] == "battery")
    r = await api.http.patch(
        f"/api/v1/devices/{battery['id']}", json={"soc_wh": 2_000}, headers=market.seller.headers
    )
    assert r.status_code == 200, r.text
    drained = await _quote(api, market.buyer)
    assert _factor(drained, "state_of_charge")["value_ppm"] == 1_060_000
    assert drained["price"] > quote["price"]

    # The seller delivers 750 of the 1,500 Wh sold: reliability 0.5.
    await record_export(api.state, market.meter_id, {setup.epoch_id: (0, 750)})
    await record_export(api.state, setup.buyer_meter, {setup.epoch_id: (1_500, 0)})
    await _settle_after_grace(api, clock, setup)
    market = setup.market
    after = await _quote(api, market.buyer)
    reliability = _factor(after, "reliability")
    measured = (await _deliveries(api, market.buyer, setup.epoch_id)).values()
    delivered = sum(d["delivered_wh"] for d in measured)
    contracted = sum(d["contracted_wh"] for d in measured)
    assert (delivered, contracted) == (742, 1_486)  # half of what reached the buyer's side
    share = delivered * PPM // contracted
    assert reliability["inputs"] == {
        "reliability_ppm": share,
        "suppliers": 0,
        "deliveries": 2,
        "delivered_wh": delivered,
        "contracted_wh": contracted,
    }
    assert reliability["value_ppm"] == PPM - 200_000 * (PPM - share) // PPM  # about 0.9

    # The book: demand alone pushes the factor to its cap; supply brings it back.
    assert _factor(after, "supply_demand")["value_ppm"] == PPM
    buy = await api.order(market.buyer, side="buy", qty_wh=1_000, limit_price=90_000, zone="main")
    assert buy.status_code == 201, buy.text
    demand = await _quote(api, market.buyer)
    sd = _factor(demand, "supply_demand")
    assert sd["inputs"]["demand_wh"] == 1_000
    assert (sd["unclamped_ppm"], sd["value_ppm"]) == (1_500_000, 1_500_000)
    sell = await api.order(market.seller, side="sell", qty_wh=500, limit_price=250_000, zone="main")
    assert sell.status_code == 201, sell.text
    both = await _quote(api, market.buyer)
    sd = _factor(both, "supply_demand")
    assert (sd["inputs"]["demand_wh"], sd["inputs"]["supply_wh"]) == (1_000, 500)
    assert sd["value_ppm"] == PPM + 500_000 * ((1_000 - 500) * PPM // 1_500) // PPM
    # Now the book has a supplier: reliability is that supplier's own record.
    assert _factor(both, "reliability")["inputs"]["suppliers"] == 1
    assert _factor(both, "reliability")["value_ppm"] == reliability["value_ppm"]
    assert both["price"] == _product(both)

    unknown = await api.http.get(
        "/api/v1/markets/main/reference-price",
        params={"from_zone": "nowhere"},
        headers=market.buyer.headers,
    )
    assert_problem(unknown, 422, "unknown_zone")
