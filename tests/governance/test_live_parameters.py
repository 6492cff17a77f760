"""End to end: the community votes zone rates and reference-price weights; once executed
they apply from the next epoch (its trades pay the new wheeling charge, its reference
price runs under the new weights) while the epoch already traded keeps the old ones, and
the ledger shows each settled epoch's parameter set."""

from __future__ import annotations

from typing import Any

from chain_service.flow import (
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
from wattx.settlement.contract_chain import ContractChain

from .conftest import TIMELOCK_S, VOTING_PERIOD_S
from .test_fee_change_end_to_end import _trade_in
from .test_governance_api import GOV, _generator, _vote


async def _pass(api: ApiClient, voters: list[User], parameter: str, value: int) -> int:
    r = await api.http.post(
        f"{GOV}/proposals",
        json={"parameter": parameter, "value": value, "rationale": "feeder upgrade"},
        headers=voters[0].headers,
    )
    assert r.status_code == 201, r.text
    proposal_id = int(r.json()["id"])
    for voter in voters:
        assert (await _vote(api, voter, proposal_id, True)).status_code == 200
    return proposal_id


async def _quote(api: ApiClient, user: User, epoch_id: int) -> dict[str, Any]:
    r = await api.http.get(
        "/api/v1/markets/main/reference-price", params={"epoch_id": epoch_id}, headers=user.headers
    )
    assert r.status_code == 200, r.text
    return {f["name"]: f for f in r.json()["factors"]} | {"_base": r.json()["base"]}


async def test_voted_zone_rates_and_weights_apply_from_the_next_epoch(
    api: ApiClient, clock: ManualClock, chain: ContractChain
) -> None:
    now_epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    await record_export(api.state, market.meter_id, {now_epoch - 2: (0, 3_000)})
    big = await _generator(api, market.operator, "M-2", 5_000, now_epoch - 2)
    await mint(api, market)
    await deposit(api, market, market.buyer, 5_000_000)

    before = await trade_and_close(api, market, 1_000)
    first_epoch = before[0]["epoch_id"]
    for trade in before:
        assert trade["wheeling_fee"] == trade["qty_wh"] * 5_000 // 1_000

    voters = [market.seller, big]
    wheeling = await _pass(api, voters, "wheeling_same_zone_per_kwh", 8_000)
    loss = await _pass(api, voters, "loss_same_zone_ppm", 20_000)
    storage = await _pass(api, voters, "refprice_storage_weight_bps", 0)
    base = await _pass(api, voters, "refprice_base_per_kwh", 120_000)
    chain.advance_time(VOTING_PERIOD_S + TIMELOCK_S)
    starts = []
    for proposal_id in (wheeling, loss, storage, base):
        done = await api.http.post(
            f"{GOV}/proposals/{proposal_id}/execute", headers=market.operator.headers
        )
        assert done.status_code == 200, done.text
        starts.append(done.json()["applies_from_epoch"])
    # Each set starts after the last: never two changes in one epoch, never mid-epoch.
    assert starts == list(range(first_epoch + 1, first_epoch + 5))
    last = starts[-1]

    # The zone-rates route quotes the first epoch open now: only the first change is in it.
    assert api.state.market.first_open_epoch(clock.now()) == first_epoch + 1
    rates = await api.http.get("/api/v1/zones/rates", headers=market.buyer.headers)
    (quoted,) = rates.json()["rates"]
    assert (quoted["wheeling_per_kwh"], quoted["loss_bps"]) == (8_000, 100)
    # The epoch under every change: the new rate (loss 20,000 ppm = 200 bps) and weights.
    assert api.state.market.rates_for(last).same_zone_wheeling == 8_000
    assert api.state.market.rates_for(last).same_zone_loss_bps == 200
    assert api.state.market.rates_for(first_epoch).same_zone_wheeling == 5_000
    old, new = (
        await _quote(api, market.buyer, first_epoch + 1),
        await _quote(api, market.buyer, last),
    )
    assert old["state_of_charge"]["weight_ppm"] == 200_000
    assert new["state_of_charge"]["weight_ppm"] == 0
    assert new["distance"]["inputs"]["wheeling_per_kwh"] == 8_000
    assert new["distance"]["inputs"]["loss_bps"] == 200
    assert (old["_base"], new["_base"]) == (100_000, 120_000)  # last trade, then governed

    after = await _trade_in(api, market, last)
    assert after["wheeling_fee"] == after["qty_wh"] * 8_000 // 1_000
    assert after["delivered_wh"] == after["qty_wh"] - after["qty_wh"] * 200 // 10_000

    market = await end_delivery(api, market, last)
    for epoch_id in (first_epoch, last):
        assert (await settle(api, market, epoch_id))["status"] == "confirmed"
    ledger = await api.http.get("/api/v1/ledger/epochs")
    by_epoch = {item["epoch_id"]: item["parameter_set"] for item in ledger.json()["items"]}
    assert by_epoch[first_epoch]["values"]["wheeling_same_zone_per_kwh"] == 5_000
    newest = by_epoch[last]
    assert (newest["from_epoch"], newest["proposal_id"]) == (last, base)
    assert newest["values"] == {
        **by_epoch[first_epoch]["values"],
        "wheeling_same_zone_per_kwh": 8_000,
        "loss_same_zone_ppm": 20_000,
        "refprice_storage_weight_bps": 0,
        "refprice_base_per_kwh": 120_000,
    }
