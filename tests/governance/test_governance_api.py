"""Governance through the API on the embedded chain (SQLite and PostgreSQL): parameters,
a proposal's life from creation to execution, and every refusal with its code and no
state change."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from chain_service.flow import PUBLIC_KEY_HEX, mint, record_export, set_up_market
from service.client import ApiClient, User
from service.conftest import ManualClock
from service.helpers import assert_problem
from wattx.domain.epochs import EpochSchedule
from wattx.services.principal import Role
from wattx.settlement.contract_chain import ContractChain
from wattx.settlement.deploy import parameter_key

from .conftest import QUORUM_WH, TIMELOCK_S, VOTING_PERIOD_S

GOV = "/api/v1/governance"


async def _generator(api: ApiClient, op: User, serial: str, wh: int, epoch: int) -> User:
    """A prosumer whose meter's verified export of ``wh`` was minted (their voting weight)."""
    user = await api.signup(Role.PROSUMER)
    meter = await api.http.post(
        "/api/v1/meters",
        json={
            "serial": serial,
            "zone_id": "main",
            "rated_capacity_w": 20_000,
            "public_key": PUBLIC_KEY_HEX,
        },
        headers=user.headers,
    )
    assert meter.status_code == 201, meter.text
    meter_id = meter.json()["id"]
    activated = await api.http.post(f"/api/v1/meters/{meter_id}/activate", headers=op.headers)
    assert activated.status_code == 200, activated.text
    await record_export(api.state, meter_id, {epoch: (0, wh)})
    return user


async def _proposal(api: ApiClient, user: User, proposal_id: int) -> dict[str, Any]:
    r = await api.http.get(f"{GOV}/proposals/{proposal_id}", headers=user.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _fee(api: ApiClient, user: User) -> dict[str, Any]:
    r = await api.http.get(f"{GOV}/parameters", headers=user.headers)
    assert r.status_code == 200, r.text
    (fee,) = [p for p in r.json()["items"] if p["name"] == "market_fee_bps"]
    return dict(fee)


async def _propose(api: ApiClient, user: User, value: int) -> dict[str, Any]:
    r = await api.http.post(
        f"{GOV}/proposals",
        json={"parameter": "market_fee_bps", "value": value, "rationale": "fund the feeder"},
        headers=user.headers,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def _vote(api: ApiClient, user: User, proposal_id: int, support: bool) -> Any:
    return await api.http.post(
        f"{GOV}/proposals/{proposal_id}/votes", json={"support": support}, headers=user.headers
    )


async def _proposal_events(api: ApiClient) -> list[dict[str, Any]]:
    """The ``proposal.updated`` events the SSE hub holds (as an operator's stream shows them)."""
    await asyncio.sleep(0.05)  # the hub's pump takes events off the bus
    found = []
    stream = api.state.events.stream(
        user_id="op", sees_everything=True, last_event_id=0, keepalive_s=0.05
    )
    async for frame in stream:
        if frame.startswith(": keep-alive"):
            break
        if "event: proposal.updated" in frame:
            found.append(json.loads(frame.split("data: ", 1)[1])["data"])
    return found


async def test_a_fee_proposal_is_voted_and_executed_after_the_timelock(
    api: ApiClient, clock: ManualClock, chain: ContractChain
) -> None:
    now_epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    op = market.operator
    await record_export(api.state, market.meter_id, {now_epoch - 2: (0, 3_000)})
    big = await _generator(api, op, "M-2", 5_000, now_epoch - 2)
    await mint(api, market)
    assert chain.generated_wh(await api.state.chain_accounts.ensure(big.id)) == 5_000

    listed = await api.http.get(f"{GOV}/parameters", headers=market.buyer.headers)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["rules"] == {
        "voting_period_s": VOTING_PERIOD_S,
        "timelock_s": TIMELOCK_S,
        "quorum_wh": QUORUM_WH,
    }
    names = {p["name"] for p in body["items"]}
    assert {"market_fee_bps", "refprice_storage_weight_bps", "incentive_min_bond"} <= names
    assert await _fee(api, op) == {
        "name": "market_fee_bps",
        "value": 25,
        "minimum": 0,
        "maximum": 1_000,
        "unit": "basis points",
    }

    created = await _propose(api, market.seller, 40)
    assert created["id"] == 1
    assert created["status"] == "voting"
    assert created["rationale"] == "fund the feeder"
    assert (created["votes_for"], created["votes_against"]) == (0, 0)
    assert created["quorum_wh"] == QUORUM_WH
    assert created["quorum_reached"] is False

    yes = await _vote(api, market.seller, 1, True)
    assert yes.status_code == 200, yes.text
    assert yes.json()["weight_wh"] == 3_000
    assert yes.json()["proposal"]["votes_for"] == 3_000

    early = await api.http.post(f"{GOV}/proposals/1/execute", headers=op.headers)
    assert_problem(early, 409, "voting_still_open")

    yes = await _vote(api, big, 1, True)
    assert yes.status_code == 200, yes.text
    tally = await _proposal(api, op, 1)
    assert (tally["votes_for"], tally["votes_against"]) == (8_000, 0)
    assert tally["quorum_reached"] is True

    chain.advance_time(VOTING_PERIOD_S)
    assert (await _proposal(api, op, 1))["status"] == "timelocked"
    locked = await api.http.post(f"{GOV}/proposals/1/execute", headers=market.buyer.headers)
    assert_problem(locked, 409, "timelock_not_elapsed")
    assert (await _fee(api, op))["value"] == 25

    chain.advance_time(TIMELOCK_S)
    assert (await _proposal(api, op, 1))["status"] == "executable"
    done = await api.http.post(f"{GOV}/proposals/1/execute", headers=market.buyer.headers)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "executed"
    assert done.json()["executed"] is True
    assert (await _fee(api, op))["value"] == 40
    assert chain.governed_parameter(parameter_key("market_fee_bps"))[1] == 40

    again = await api.http.post(f"{GOV}/proposals/1/execute", headers=op.headers)
    assert_problem(again, 409, "proposal_already_executed")

    statuses = [e["status"] for e in await _proposal_events(api) if e["proposal_id"] == 1]
    assert statuses[0] == "voting"
    assert statuses[-1] == "executed"
    assert len(statuses) == 4  # created, two votes, executed

    audit = await api.http.get("/api/v1/audit?target=proposal:1", headers=op.headers)
    assert audit.status_code == 200, audit.text
    actions = sorted(entry["action"] for entry in audit.json()["items"])
    assert actions == [
        "governance.executed",
        "governance.proposed",
        "governance.voted",
        "governance.voted",
    ]


async def test_refusals_have_codes_and_change_nothing(
    api: ApiClient, clock: ManualClock, chain: ContractChain
) -> None:
    now_epoch = EpochSchedule().epoch_id_at(clock.now())
    market = await set_up_market(api)
    op = market.operator
    await record_export(api.state, market.meter_id, {now_epoch - 2: (0, 3_000)})
    late = await _generator(api, op, "M-2", 2_000, now_epoch - 2)
    await mint(api, market)

    async def proposals() -> int:
        r = await api.http.get(f"{GOV}/proposals", headers=op.headers)
        assert r.status_code == 200, r.text
        return int(r.json()["total"])

    unknown = await api.http.post(
        f"{GOV}/proposals",
        json={"parameter": "free_lunch", "value": 1, "rationale": "why not"},
        headers=market.seller.headers,
    )
    assert_problem(unknown, 422, "unknown_parameter")
    too_high = await api.http.post(
        f"{GOV}/proposals",
        json={"parameter": "market_fee_bps", "value": 1_001, "rationale": "more"},
        headers=market.seller.headers,
    )
    assert_problem(too_high, 422, "parameter_out_of_limits")
    assert too_high.json()["context"]["maximum"] == 1_000
    negative = await api.http.post(
        f"{GOV}/proposals",
        json={"parameter": "market_fee_bps", "value": -1, "rationale": "less"},
        headers=market.seller.headers,
    )
    assert_problem(negative, 422, "validation_error")
    pending = await api.signup(Role.CONSUMER, admit=False)
    not_admitted = await api.http.post(
        f"{GOV}/proposals",
        json={"parameter": "market_fee_bps", "value": 30, "rationale": "me too"},
        headers=pending.headers,
    )
    assert_problem(not_admitted, 403, "not_admitted")
    assert await proposals() == 0
    assert chain.proposal_count() == 0

    missing = await _vote(api, market.seller, 7, True)
    assert_problem(missing, 404, "proposal_not_found")
    assert_problem(
        await api.http.get(f"{GOV}/proposals/7", headers=op.headers), 404, "proposal_not_found"
    )

    first = await _propose(api, market.seller, 10)
    no_weight = await _vote(api, market.buyer, first["id"], True)
    assert_problem(no_weight, 403, "no_voting_weight")
    assert (await _vote(api, market.seller, first["id"], False)).status_code == 200
    twice = await _vote(api, market.seller, first["id"], True)
    assert_problem(twice, 409, "already_voted")
    tally = await _proposal(api, op, first["id"])
    assert (tally["votes_for"], tally["votes_against"]) == (0, 3_000)

    chain.advance_time(VOTING_PERIOD_S)
    after = await _vote(api, late, first["id"], True)
    assert_problem(after, 409, "voting_closed")
    assert (await _proposal(api, op, first["id"]))["votes_for"] == 0
    chain.advance_time(TIMELOCK_S)
    # 3,000 Wh voted, below the 4,000 Wh quorum
    assert (await _proposal(api, op, first["id"]))["status"] == "quorum_not_reached"
    below = await api.http.post(f"{GOV}/proposals/{first['id']}/execute", headers=op.headers)
    assert_problem(below, 409, "quorum_not_reached")

    second = await _propose(api, market.seller, 20)
    assert (await _vote(api, market.seller, second["id"], False)).status_code == 200
    assert (await _vote(api, late, second["id"], True)).status_code == 200
    chain.advance_time(VOTING_PERIOD_S + TIMELOCK_S)
    assert (await _proposal(api, op, second["id"]))["status"] == "rejected"
    rejected = await api.http.post(f"{GOV}/proposals/{second['id']}/execute", headers=op.headers)
    assert_problem(rejected, 409, "proposal_rejected")
    assert (await _fee(api, op))["value"] == 25

    forbidden = await api.http.post(
        f"{GOV}/proposals/{second['id']}/votes", json={"support": True}, headers=op.headers
    )
    assert_problem(forbidden, 403, "forbidden")
    listed = await api.http.get(f"{GOV}/proposals?limit=1", headers=op.headers)
    assert [p["id"] for p in listed.json()["items"]] == [second["id"]]
    assert listed.json()["page"]["next_offset"] == 1
