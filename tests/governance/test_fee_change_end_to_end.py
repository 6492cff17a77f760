"""End to end: the community votes a fee change, it is executed, the next epoch's trades
pay the new fee (the epoch already traded keeps the old one), and the public ledger shows
the parameter set each settled epoch ran under."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from chain_service.flow import (
    Market,
    deposit,
    end_delivery,
    mint,
    record_export,
    set_up_market,
    settle,
    trade_and_close,
)
from service.client import ApiClient, User
from service.conftest import ManualClock
from wattx.domain.epochs import EpochSchedule
from wattx.market.execution import fee_of
from wattx.settlement.contract_chain import ContractChain

from .conftest import TIMELOCK_S, VOTING_PERIOD_S
from .test_governance_api import GOV, _generator, _propose, _vote


async def _trade_in(api: ApiClient, market: Market, epoch_id: int) -> dict[str, Any]:
    sell = await api.order(
        market.seller,
        side="sell",
        qty_wh=1_000,
        limit_price=100_000,
        zone="main",
        epoch_id=epoch_id,
    )
    assert sell.status_code == 201, sell.text
    buy = await api.order(
        market.buyer, side="buy", qty_wh=1_000, limit_price=200_000, zone="main", epoch_id=epoch_id
    )
    assert buy.status_code == 201, buy.text
    (trade,) = buy.json()["trades"]
    closed = await api.http.post(
        f"/api/v1/epochs/{epoch_id}/close", headers=market.operator.headers
    )
    assert closed.status_code == 200, closed.text
    return dict(trade)


async def test_a_voted_fee_applies_from_the_next_epoch_and_the_ledger_shows_it(
    api: ApiClient, clock: ManualClock, chain: ContractChain
) -> None:
    now_epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    await record_export(api.state, market.meter_id, {now_epoch - 2: (0, 3_000)})
    big: User = await _generator(api, market.operator, "M-2", 5_000, now_epoch - 2)
    await mint(api, market)
    await deposit(api, market, market.buyer, 5_000_000)

    before = await trade_and_close(api, market, 1_000)
    first_epoch = before[0]["epoch_id"]
    for trade in before:
        assert trade["buyer_fee"] == fee_of(trade["value"], 25)

    proposal = await _propose(api, market.seller, 40)
    for voter in (market.seller, big):
        assert (await _vote(api, voter, proposal["id"], True)).status_code == 200
    chain.advance_time(VOTING_PERIOD_S + TIMELOCK_S)
    done = await api.http.post(
        f"{GOV}/proposals/{proposal['id']}/execute", headers=market.operator.headers
    )
    assert done.status_code == 200, done.text
    next_epoch = done.json()["applies_from_epoch"]
    # The epoch that already traded keeps its fee; the change starts at the next one.
    assert next_epoch == first_epoch + 1
    assert api.state.market.fee_for(first_epoch) == 25
    assert api.state.market.fee_for(next_epoch) == 40

    after = await _trade_in(api, market, next_epoch)
    assert after["buyer_fee"] == fee_of(after["value"], 40)
    assert after["seller_fee"] == fee_of(after["value"], 40)
    assert after["buyer_fee"] > fee_of(after["value"], 25)

    market = await end_delivery(api, market, next_epoch)
    for epoch_id in (first_epoch, next_epoch):
        assert (await settle(api, market, epoch_id))["status"] == "confirmed"

    ledger = await api.http.get("/api/v1/ledger/epochs")  # public
    assert ledger.status_code == 200, ledger.text
    by_epoch = {item["epoch_id"]: item["parameter_set"] for item in ledger.json()["items"]}
    old, new = by_epoch[first_epoch], by_epoch[next_epoch]
    assert (old["from_epoch"], old["proposal_id"], old["values"]["market_fee_bps"]) == (0, None, 25)
    assert (new["from_epoch"], new["proposal_id"]) == (next_epoch, proposal["id"])
    assert new["values"] == {**old["values"], "market_fee_bps": 40}
    for parameter_set in (old, new):
        canonical = json.dumps(dict(sorted(parameter_set["values"].items())), separators=(",", ":"))
        assert parameter_set["hash"] == hashlib.sha256(canonical.encode()).hexdigest()
    # the settled fees are what the trade paid: both market fees and the wheeling charge
    fees = {item["epoch_id"]: item["fees"] for item in ledger.json()["items"]}
    assert fees[next_epoch] == after["buyer_fee"] + after["seller_fee"] + after["wheeling_fee"]


async def test_a_change_waits_for_epochs_that_already_hold_orders(
    api: ApiClient, clock: ManualClock, chain: ContractChain
) -> None:
    now_epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    voter = await _generator(api, market.operator, "M-2", 5_000, now_epoch - 2)
    await mint(api, market)
    await deposit(api, market, market.buyer, 5_000_000)
    first_open = api.state.market.schedule.first_open_epoch(clock.now())
    resting = await api.order(
        market.buyer,
        side="buy",
        qty_wh=1_000,
        limit_price=150_000,
        zone="main",
        epoch_id=first_open + 2,
    )
    assert resting.status_code == 201, resting.text
    wallet_before = await api.wallet(market.buyer)

    proposal = await _propose(api, voter, 900)
    assert (await _vote(api, voter, proposal["id"], True)).status_code == 200
    chain.advance_time(VOTING_PERIOD_S + TIMELOCK_S)
    done = await api.http.post(f"{GOV}/proposals/{proposal['id']}/execute", headers=voter.headers)
    assert done.status_code == 200, done.text
    # The resting buy was escrowed under 25 bps: its epoch keeps that fee.
    assert done.json()["applies_from_epoch"] == first_open + 3
    assert api.state.market.fee_for(first_open + 2) == 25
    assert api.state.market.fee_for(first_open + 3) == 900
    assert await api.wallet(market.buyer) == wallet_before
