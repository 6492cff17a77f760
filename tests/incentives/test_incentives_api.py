"""Node incentives through the API on the embedded chain (SQLite and PostgreSQL): rewards
from real heartbeat records, slashing for a tampered batch and its appeal, slashing for
failed commands that goes to the pool, and every refusal with its code and no change."""

from __future__ import annotations

import os
import uuid
from datetime import timedelta
from typing import Any

import pytest

from ingest.conftest import register_meter
from nodes.test_relay import batch
from service.client import ApiClient, User
from service.conftest import ManualClock
from service.helpers import assert_problem
from wattx.api.state import AppState
from wattx.incentives import FAILED_COMMANDS, TAMPERED_BATCH, uptime_bps
from wattx.nodes import challenge
from wattx.nodes.frames import AckFrame, HeartbeatFrame
from wattx.services.community import incentives as incentives_service
from wattx.services.community.nodes import LinkGrant
from wattx.services.principal import Role
from wattx.settlement.deploy import DEFAULT_PARAMETERS

from .conftest import CAP, PERIOD_S

P = {p.name: p.initial for p in DEFAULT_PARAMETERS}
MIN_BOND = P["incentive_min_bond"]
BUDGET = P["incentive_budget_per_period"]
SLASH_BPS = P["incentive_slash_bps"]
WINDOW = P["incentive_appeal_window_s"]
INTERVAL = 30


async def node_of(api: ApiClient, owner: User | None = None) -> tuple[str, User, LinkGrant]:
    """A node operator's node, enrolled over the API, and the grant its link would hold."""
    owner = owner or await api.signup(Role.NODE_OPERATOR)
    op = await api.operator()
    token = await api.http.post(
        "/api/v1/nodes/registration-tokens",
        json={"owner_id": owner.id, "name": f"site-{uuid.uuid4().hex[:6]}", "ttl_s": 600},
        headers=op.headers,
    )
    assert token.status_code == 201, token.text
    public_key = challenge.public_key_hex(os.urandom(32))
    enrolled = await api.http.post(
        "/api/v1/nodes/enrol",
        json={"registration_token": token.json()["token"], "public_key": public_key},
    )
    assert enrolled.status_code == 201, enrolled.text
    node_id = enrolled.json()["node_id"]
    return node_id, owner, LinkGrant(node_id, public_key, uuid.uuid4().hex, INTERVAL, owner.id)


async def bonded(api: ApiClient, state: AppState, owner: User, node_id: str, amount: int) -> None:
    """The owner's wallet gets ``amount`` of credit on chain (the operator mints it), and the
    owner bonds it through the API."""
    address = await state.chain_accounts.ensure(owner.id)
    chain = state.chain_accounts.chain
    await state.chain_accounts.run(chain.mint_credit, address, amount)
    r = await api.http.post(
        f"/api/v1/nodes/{node_id}/bond", json={"amount": amount}, headers=owner.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["bond"] == amount


async def fund(api: ApiClient, amount: int) -> None:
    op = await api.operator()
    r = await api.http.post("/api/v1/incentives/pool", json={"amount": amount}, headers=op.headers)
    assert r.status_code == 200, r.text


async def rewards(api: ApiClient, user: User, node_id: str) -> dict[str, Any]:
    r = await api.http.get(f"/api/v1/nodes/{node_id}/rewards", headers=user.headers)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def report(api: ApiClient, period: int) -> Any:
    op = await api.operator()
    return await api.http.post(f"/api/v1/incentives/periods/{period}/report", headers=op.headers)


def to_period_start(state: AppState, clock: ManualClock) -> int:
    periods = state.incentives.periods
    period = periods.period_of(clock.now()) + 1
    clock.current = periods.start(period)
    return period


async def test_full_uptime_earns_more_than_half_uptime_from_heartbeats(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    full_id, full_owner, full = await node_of(api)
    half_id, half_owner, half = await node_of(api)
    for node_id, owner in ((full_id, full_owner), (half_id, half_owner)):
        await bonded(api, state, owner, node_id, MIN_BOND)
    await fund(api, 3 * BUDGET)
    period = to_period_start(state, clock)
    frame = HeartbeatFrame(uptime_s=1, version="v", buffer_depth=0, devices={})
    # One heartbeat per 30 s interval from one node, one every other interval from the
    # other; written by the flush every 10 intervals, as the heartbeat task does.
    for slot in range(PERIOD_S // INTERVAL):
        await state.nodes.record_heartbeat(full, frame)
        await state.nodes.record_heartbeat(full, frame)  # a second one in the same interval
        if slot % 2 == 0:
            await state.nodes.record_heartbeat(half, frame)
        if slot % 10 == 9:
            await state.nodes.flush_heartbeats()
        clock.advance(INTERVAL)
    await state.nodes.flush_heartbeats()
    # The period has ended: it cannot be reported twice, nor the one now running.
    assert_problem(await report(api, period + 1), 409, "incentive_period_open")
    r = await report(api, period)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["nodes"] == 2
    score_full, score_half = 10_000 * 100, 5_000 * 100
    expected = {
        full_id: min(CAP, BUDGET * score_full // (score_full + score_half)),
        half_id: min(CAP, BUDGET * score_half // (score_full + score_half)),
    }
    assert body["rewards"] == expected
    assert expected[full_id] > expected[half_id] > 0
    assert body["paid"] == sum(expected.values())
    assert_problem(await report(api, period), 409, "period_already_reported")
    mine = await rewards(api, full_owner, full_id)
    theirs = await rewards(api, half_owner, half_id)
    assert mine["periods"][0]["uptime_bps"] == 10_000
    assert mine["periods"][0]["up_slots"] == PERIOD_S // INTERVAL
    assert theirs["periods"][0]["uptime_bps"] == uptime_bps(
        PERIOD_S // INTERVAL // 2, INTERVAL, PERIOD_S
    )
    assert theirs["periods"][0]["uptime_bps"] == 5_000
    assert (mine["pending"], mine["periods"][0]["reward"]) == (expected[full_id],) * 2
    assert theirs["pending"] == expected[half_id]
    # Someone else's node: not claimable, not readable.
    claim = f"/api/v1/nodes/{full_id}/rewards/claim"
    assert_problem(await api.http.post(claim, headers=half_owner.headers), 403, "node_not_owned")
    assert_problem(
        await api.http.get(f"/api/v1/nodes/{full_id}/rewards", headers=half_owner.headers),
        403,
        "node_not_owned",
    )
    assert (await rewards(api, full_owner, full_id))["pending"] == expected[full_id]
    paid = await api.http.post(claim, headers=full_owner.headers)
    assert paid.status_code == 200, paid.text
    assert paid.json()["amount"] == expected[full_id]
    wallet = await api.http.get("/api/v1/wallet", headers=full_owner.headers)
    assert wallet.json()["chain"]["credit"]["wallet"] == expected[full_id]
    assert_problem(
        await api.http.post(claim, headers=full_owner.headers), 409, "incentive_rule_violated"
    )
    after = await rewards(api, full_owner, full_id)
    assert (after["earned"], after["claimed"], after["pending"]) == (
        expected[full_id],
        expected[full_id],
        0,
    )


async def test_a_tampered_batch_is_slashed_and_the_appeal_reverses_it(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    node_id, owner, grant = await node_of(api)
    other_id, other_owner, _ = await node_of(api)
    await bonded(api, state, owner, node_id, 2 * MIN_BOND)
    period = to_period_start(state, clock)
    meter = await register_meter(api)
    op = await api.operator()
    attached = await api.http.put(f"/api/v1/nodes/{node_id}/meters/{meter.id}", headers=op.headers)
    assert attached.status_code == 200, attached.text
    good = batch(meter, clock.now() - timedelta(minutes=2))
    forged = batch(meter, clock.now() - timedelta(minutes=1))
    forged["readings"][0]["export_wh"] += 1_000  # changed after the meter signed it
    outcomes = await state.nodes.relay_readings(grant, [good, forged])
    assert outcomes[0].error is None
    assert outcomes[1].error is not None
    clock.advance(PERIOD_S)
    r = await report(api, period)
    assert r.status_code == 200, r.text
    (slash,) = r.json()["slashes"]
    held = 2 * MIN_BOND * SLASH_BPS // 10_000
    assert (slash["reason"], slash["amount"], slash["state"]) == (TAMPERED_BATCH, held, "held")
    body = await rewards(api, owner, node_id)
    assert body["bond"] == 2 * MIN_BOND - held
    assert body["periods"][0]["tampered_batches"] == 1
    assert body["periods"][0]["readings"] == 1
    appeal = f"/api/v1/nodes/{node_id}/slashes/{slash['slash_id']}/appeal"
    # Not someone else's appeal, not for another node's slash, not before it is appealed.
    assert_problem(await api.http.post(appeal, headers=other_owner.headers), 403, "node_not_owned")
    assert_problem(
        await api.http.post(
            f"/api/v1/nodes/{other_id}/slashes/{slash['slash_id']}/appeal",
            headers=other_owner.headers,
        ),
        404,
        "slash_not_found",
    )
    reverse = f"/api/v1/incentives/slashes/{slash['slash_id']}/reverse"
    assert_problem(await api.http.post(reverse, headers=op.headers), 409, "incentive_rule_violated")
    appealed = await api.http.post(appeal, headers=owner.headers)
    assert appealed.status_code == 200, appealed.text
    assert appealed.json()["state"] == "appealed"
    assert_problem(
        await api.http.post(appeal, headers=owner.headers), 409, "incentive_rule_violated"
    )
    assert_problem(await api.http.post(reverse, headers=owner.headers), 403, "forbidden")
    reversed_ = await api.http.post(reverse, headers=op.headers)
    assert reversed_.status_code == 200, reversed_.text
    assert reversed_.json()["state"] == "reversed"
    body = await rewards(api, owner, node_id)
    assert body["bond"] == 2 * MIN_BOND
    assert body["slashes"][0]["state"] == "reversed"
    audit = await api.http.get("/api/v1/audit?target=node:" + node_id, headers=op.headers)
    actions = {e["action"] for e in audit.json()["items"]}
    assert {"incentives.bonded", "incentives.slashed", "incentives.appealed"} <= actions
    assert "incentives.slash_reversed" in actions


async def test_failed_commands_past_the_threshold_are_slashed_to_the_pool(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    node_id, owner, grant = await node_of(api)
    await bonded(api, state, owner, node_id, MIN_BOND)
    period = to_period_start(state, clock)
    for _ in range(3):  # the test threshold
        r = await api.http.post(
            f"/api/v1/nodes/{node_id}/commands",
            json={"type": "diagnostics", "payload": {"name": "ping"}},
            headers=owner.headers,
        )
        assert r.status_code == 201, r.text
    for wire in await state.nodes.take_due_commands(node_id):
        await state.nodes.acknowledge(grant, AckFrame(wire["id"], "rejected", "broken", None))
    clock.advance(PERIOD_S)
    assert await state.incentives.report_due() == [period]
    assert await state.incentives.report_due() == []
    assert_problem(await report(api, period), 409, "period_already_reported")
    body = await rewards(api, owner, node_id)
    (slash,) = body["slashes"]
    assert (slash["reason"], slash["state"]) == (FAILED_COMMANDS, "held")
    assert body["periods"][0]["commands_failed"] == 3
    pool = (await api.http.get("/api/v1/incentives", headers=owner.headers)).json()["pool"]
    # Inside the window nothing moves; after it the slash goes to the pool.
    assert await state.incentives.finalize_due() == 0
    await state.chain_accounts.run(state.chain_accounts.chain.advance_time, WINDOW)
    assert await state.incentives.finalize_due() == 1
    overview = (await api.http.get("/api/v1/incentives", headers=owner.headers)).json()
    assert overview["pool"] == pool + slash["amount"]
    assert overview["last_period_reported"] == period
    assert (await rewards(api, owner, node_id))["slashes"][0]["state"] == "final"
    appeal = f"/api/v1/nodes/{node_id}/slashes/{slash['slash_id']}/appeal"
    assert_problem(
        await api.http.post(appeal, headers=owner.headers), 409, "incentive_rule_violated"
    )


async def test_bad_bond_requests_change_nothing(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    node_id, owner, _ = await node_of(api)
    other_id, other_owner, _ = await node_of(api)
    await bonded(api, state, owner, node_id, MIN_BOND)
    url = f"/api/v1/nodes/{node_id}"
    before = await rewards(api, owner, node_id)
    for body in ({"amount": 0}, {"amount": -1}, {"amount": "5"}, {}, {"amount": 1, "x": 1}):
        r = await api.http.post(f"{url}/bond", json=body, headers=owner.headers)
        assert r.status_code == 422, (body, r.text)
    # More than the wallet holds; someone else's node; not a node operator; unknown node.
    assert_problem(
        await api.http.post(f"{url}/bond", json={"amount": 1}, headers=owner.headers),
        409,
        "insufficient_balance",
    )
    for path in ("bond", "unbond"):
        assert_problem(
            await api.http.post(f"{url}/{path}", json={"amount": 1}, headers=other_owner.headers),
            403,
            "node_not_owned",
        )
    for path in ("bond/withdraw", "rewards/claim"):
        assert_problem(
            await api.http.post(f"{url}/{path}", headers=other_owner.headers), 403, "node_not_owned"
        )
    consumer = await api.signup(Role.CONSUMER)
    assert_problem(
        await api.http.post(f"{url}/bond", json={"amount": 1}, headers=consumer.headers),
        403,
        "forbidden",
    )
    assert_problem(
        await api.http.post(
            "/api/v1/nodes/nosuchnode/bond", json={"amount": 1}, headers=owner.headers
        ),
        404,
        "node_not_found",
    )
    # Above the bond; withdrawal before anything unbonds or before the delay.
    assert_problem(
        await api.http.post(f"{url}/unbond", json={"amount": MIN_BOND + 1}, headers=owner.headers),
        409,
        "incentive_rule_violated",
    )
    assert_problem(
        await api.http.post(f"{url}/bond/withdraw", headers=owner.headers),
        409,
        "incentive_rule_violated",
    )
    assert_problem(
        await api.http.post(f"{url}/slashes/99/appeal", headers=owner.headers),
        404,
        "slash_not_found",
    )
    assert await rewards(api, owner, node_id) == before
    unbonding = await api.http.post(f"{url}/unbond", json={"amount": 1_000}, headers=owner.headers)
    assert unbonding.status_code == 200, unbonding.text
    assert_problem(
        await api.http.post(f"{url}/bond/withdraw", headers=owner.headers),
        409,
        "incentive_rule_violated",
    )
    await state.chain_accounts.run(
        state.chain_accounts.chain.advance_time, P["incentive_unbonding_delay_s"]
    )
    out = await api.http.post(f"{url}/bond/withdraw", headers=owner.headers)
    assert out.status_code == 200, out.text
    assert out.json()["amount"] == 1_000
    assert (await rewards(api, owner, node_id))["bond"] == MIN_BOND - 1_000
    assert (await rewards(api, other_owner, other_id))["registered"] is False


async def test_a_period_with_more_nodes_than_one_report_takes_is_refused(
    api: ApiClient, state: AppState, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(incentives_service, "MAX_REPORTS", 1)
    grants = []
    for _ in range(2):
        node_id, owner, grant = await node_of(api)
        await bonded(api, state, owner, node_id, MIN_BOND)
        grants.append(grant)
    period = to_period_start(state, clock)
    frame = HeartbeatFrame(uptime_s=1, version="v", buffer_depth=0, devices={})
    for grant in grants:
        await state.nodes.record_heartbeat(grant, frame)
    await state.nodes.flush_heartbeats()
    clock.advance(PERIOD_S)
    assert_problem(await report(api, period), 409, "incentive_report_too_large")
    op = await api.operator()
    overview = (await api.http.get("/api/v1/incentives", headers=op.headers)).json()
    assert overview["last_period_reported"] == 0
