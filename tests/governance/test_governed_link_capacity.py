"""End to end: a feeder's link capacity is governed. The first proposal puts it under
governance at its configured value; from then on the operator cannot edit it
(``capacity_governed``); once executed, the next epoch's coupled auction schedules up to
the new capacity while the epoch already traded keeps the old one."""

from __future__ import annotations

from typing import Any

from chain_service.flow import deposit, mint, record_export, set_up_market
from service.client import ApiClient, User
from service.conftest import ManualClock
from service.helpers import FLAT_ZONE, assert_problem
from wattx.domain.epochs import EpochSchedule
from wattx.settlement.contract_chain import ContractChain

from .conftest import TIMELOCK_S, VOTING_PERIOD_S
from .test_governance_api import GOV, _generator, _vote

FEEDER = {
    "name": "Second feeder",
    "tariff": FLAT_ZONE["tariff"],
    "mechanism": "call_auction",
    "parent": "main",
    "import_capacity_wh": 30,
}


async def _auction(api: ApiClient, seller: User, buyer: User, op: User, epoch_id: int) -> Any:
    """50 Wh offered in main, 50 Wh wanted in f2; the gate closes: the f2 link's report."""
    sell = await api.order(
        seller, side="sell", qty_wh=50, limit_price=100_000, zone="main", epoch_id=epoch_id
    )
    assert sell.status_code == 201, sell.text
    buy = await api.order(
        buyer, side="buy", qty_wh=50, limit_price=250_000, zone="f2", epoch_id=epoch_id
    )
    assert buy.status_code == 201, buy.text
    closed = await api.http.post(f"/api/v1/epochs/{epoch_id}/close", headers=op.headers)
    assert closed.status_code == 200, closed.text
    return next(
        r for r in closed.json()["congestion"] if r["child"] == "f2" and r["direction"] == "down"
    )


async def test_a_voted_link_capacity_applies_from_the_next_epoch(
    api: ApiClient, clock: ManualClock, chain: ContractChain
) -> None:
    now_epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    op = market.operator
    await record_export(api.state, market.meter_id, {now_epoch - 2: (0, 3_000)})
    big = await _generator(api, op, "M-2", 5_000, now_epoch - 2)
    await mint(api, market)
    await deposit(api, market, market.buyer, 5_000_000)
    main = {k: v for k, v in {**FLAT_ZONE, "mechanism": "call_auction"}.items() if k != "id"}
    assert (await api.http.put("/api/v1/zones/main", json=main, headers=op.headers)).is_success
    created = await api.http.post("/api/v1/zones", json={"id": "f2", **FEEDER}, headers=op.headers)
    assert created.status_code == 201, created.text

    # Unknown zones and unlimited links have no governed capacity.
    for name in ("link_import_wh:nowhere", "link_export_wh:f2", "link_import_wh:"):
        refused = await api.http.post(
            f"{GOV}/proposals",
            json={"parameter": name, "value": 40, "rationale": "more"},
            headers=market.seller.headers,
        )
        assert_problem(refused, 422, "unknown_parameter")
    proposed = await api.http.post(
        f"{GOV}/proposals",
        json={"parameter": "link_import_wh:f2", "value": 40, "rationale": "new transformer"},
        headers=market.seller.headers,
    )
    assert proposed.status_code == 201, proposed.text
    proposal_id = int(proposed.json()["id"])
    listed = await api.http.get(f"{GOV}/parameters", headers=market.seller.headers)
    (link,) = [p for p in listed.json()["items"] if p["name"] == "link_import_wh:f2"]
    assert (link["value"], link["maximum"], link["unit"]) == (30, 10**12, "Wh per epoch")

    # Now governed: the operator's edit of that capacity is refused and changes nothing.
    edit = await api.http.put(
        "/api/v1/zones/f2", json={**FEEDER, "import_capacity_wh": 35}, headers=op.headers
    )
    assert_problem(edit, 409, "capacity_governed")
    assert (await api.http.get("/api/v1/zones/f2", headers=op.headers)).json()[
        "import_capacity_wh"
    ] == 30
    renamed = await api.http.put(
        "/api/v1/zones/f2", json={**FEEDER, "name": "Feeder two"}, headers=op.headers
    )
    assert renamed.status_code == 200, renamed.text

    for voter in (market.seller, big):
        assert (await _vote(api, voter, proposal_id, True)).status_code == 200
    traded = api.state.market.first_open_epoch(clock.now())
    first = await _auction(api, market.seller, market.buyer, op, traded)
    assert (first["flow_wh"], first["capacity_wh"]) == (30, 30)

    chain.advance_time(VOTING_PERIOD_S + TIMELOCK_S)
    done = await api.http.post(f"{GOV}/proposals/{proposal_id}/execute", headers=op.headers)
    assert done.status_code == 200, done.text
    start = done.json()["applies_from_epoch"]
    assert start > traded
    second = await _auction(api, market.seller, market.buyer, op, start)
    assert (second["flow_wh"], second["capacity_wh"]) == (40, 40)
