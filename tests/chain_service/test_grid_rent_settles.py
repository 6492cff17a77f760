"""A binding feeder limit at gate closure: the congestion rent rides in the trade's
wheeling fee, is settled on chain with it and shows in the ledger's fees."""

from __future__ import annotations

import dataclasses

import pytest

from service.client import ApiClient
from service.conftest import ManualClock
from service.helpers import FLAT_ZONE
from wattx.api.state import AppState
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.deploy import DEFAULT_PARAMETERS, DeploySettings
from wattx.settlement.embedded import EmbeddedChain

from .flow import (
    assert_books_agree,
    deposit,
    end_delivery,
    mint,
    record_export,
    set_up_market,
    settle,
)


@pytest.fixture
def chain() -> ContractChain:
    """A community that governs its zone rates to zero wheeling and no loss from the start
    (the deployed values are the first parameter set), so the rent is the only charge."""
    free = [
        dataclasses.replace(p, initial=0) if p.name.startswith(("wheeling_", "loss_")) else p
        for p in DEFAULT_PARAMETERS
    ]
    return EmbeddedChain(settings=DeploySettings(parameters=free))


async def test_congestion_rent_is_settled_on_chain(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    schedule = state.market.schedule
    market = await set_up_market(api)
    await record_export(state, market.meter_id, {schedule.epoch_id_at(clock.now()) - 1: (0, 1_000)})
    await mint(api, market)
    await deposit(api, market, market.buyer, 5_000_000)
    op = market.operator.headers
    main = await api.http.put(
        "/api/v1/zones/main",
        json={k: v for k, v in {**FLAT_ZONE, "mechanism": "call_auction"}.items() if k != "id"},
        headers=op,
    )
    assert main.status_code == 200, main.text
    feeder = {
        "id": "f2",
        "name": "Second feeder",
        "tariff": FLAT_ZONE["tariff"],
        "mechanism": "call_auction",
        "parent": "main",
        "import_capacity_wh": 30,
    }
    created = await api.http.post("/api/v1/zones", json=feeder, headers=op)
    assert created.status_code == 201, created.text
    rates = await api.http.get("/api/v1/zones/rates", headers=op)
    assert {(r["wheeling_per_kwh"], r["loss_bps"]) for r in rates.json()["rates"]} == {(0, 0)}

    epoch_id = schedule.first_open_epoch(clock.now())
    sell = await api.order(market.seller, side="sell", qty_wh=50, limit_price=100_000, zone="main")
    assert sell.status_code == 201, sell.text
    buy = await api.order(market.buyer, side="buy", qty_wh=50, limit_price=250_000, zone="f2")
    assert buy.status_code == 201, buy.text
    closed = await api.http.post(f"/api/v1/epochs/{epoch_id}/close", headers=op)
    assert closed.status_code == 200, closed.text
    body = closed.json()
    (trade,) = body["trades"]
    down = next(r for r in body["congestion"] if r["child"] == "f2" and r["direction"] == "down")
    # Only 30 Wh may enter f2: the seller's zone prices at its ask, f2 at its bid.
    assert (down["flow_wh"], down["capacity_wh"], down["shadow_price"]) == (30, 30, 150_000)
    assert down["rent"] == 30 * 150_000 // 1_000 == 4_500
    assert (trade["qty_wh"], trade["price"], trade["value"]) == (30, 100_000, 3_000)
    assert trade["wheeling_fee"] == down["rent"]

    market = await end_delivery(api, market, epoch_id)
    row = await settle(api, market, epoch_id)
    assert row["status"] == "confirmed", row
    overview = await api.http.get("/api/v1/ledger/overview")
    assert overview.status_code == 200, overview.text
    fees = trade["buyer_fee"] + trade["seller_fee"] + trade["wheeling_fee"]
    assert overview.json()["fees"] == fees
    # The public ledger names the part of the settled fees that is congestion rent.
    epochs = await api.http.get("/api/v1/ledger/epochs")
    assert epochs.status_code == 200, epochs.text
    (settled,) = [e for e in epochs.json()["items"] if e["epoch_id"] == epoch_id]
    assert (settled["status"], settled["fees"]) == ("confirmed", fees)
    assert settled["congestion_rent"] == down["rent"] == 4_500
    for user in (market.buyer, market.seller):
        await assert_books_agree(state, user.id)
    wallet = await api.wallet(market.buyer)
    paid = trade["value"] + trade["wheeling_fee"] + trade["buyer_fee"]
    assert wallet["credit"]["free"] + wallet["credit"]["locked"] == 5_000_000 - paid
