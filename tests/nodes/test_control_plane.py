"""The control plane over HTTP: tokens, enrolment, ownership, commands, the audit log."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import update

from service.client import ApiClient
from service.conftest import ManualClock
from service.helpers import assert_problem
from wattx.api.state import AppState
from wattx.nodes import challenge
from wattx.services.principal import Role
from wattx.store.models_nodes import AuditLogRow

from .conftest import registration_token


def _enrol_body(token: str, seed: bytes | None = None) -> dict[str, Any]:
    return {
        "registration_token": token,
        "public_key": challenge.public_key_hex(seed or os.urandom(32)),
    }


async def _audit(api: ApiClient) -> list[dict[str, Any]]:
    op = await api.operator()
    response = await api.http.get("/api/v1/audit", headers=op.headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_registration_token_is_shown_once_and_spent_once(api: ApiClient) -> None:
    owner = await api.signup(Role.NODE_OPERATOR)
    token = await registration_token(api, owner)
    enrolled = await api.http.post("/api/v1/nodes/enrol", json=_enrol_body(token))
    assert enrolled.status_code == 201, enrolled.text
    node_id = enrolled.json()["node_id"]
    again = await api.http.post("/api/v1/nodes/enrol", json=_enrol_body(token))
    assert_problem(again, 401, "registration_token_used")
    listed = await api.http.get("/api/v1/nodes", headers=owner.headers)
    assert [n["id"] for n in listed.json()["items"]] == [node_id]
    # Nothing stored holds the token itself; the audit names who created it, never the token.
    entries = await _audit(api)
    assert token not in str(entries)
    actions = [e["action"] for e in entries]
    assert actions[:3] == ["node.enrol.refused", "node.enrolled", "node.registration_token.created"]
    assert entries[0]["after"] == {"refused": "registration_token_used"}
    assert entries[0]["actor"] == "anonymous"


async def test_an_expired_or_unknown_token_is_refused_with_an_audit_row(
    api: ApiClient, clock: ManualClock
) -> None:
    owner = await api.signup(Role.NODE_OPERATOR)
    token = await registration_token(api, owner, ttl_s=60)
    clock.advance(60)
    expired = await api.http.post("/api/v1/nodes/enrol", json=_enrol_body(token))
    assert_problem(expired, 401, "registration_token_expired")
    unknown = await api.http.post("/api/v1/nodes/enrol", json=_enrol_body("wxr_" + "A" * 43))
    assert_problem(unknown, 401, "registration_token_invalid")
    malformed = await api.http.post("/api/v1/nodes/enrol", json=_enrol_body("guess"))
    assert_problem(malformed, 401, "registration_token_invalid")
    bad_key = await api.http.post(
        "/api/v1/nodes/enrol", json={"registration_token": token, "public_key": "00"}
    )
    assert_problem(bad_key, 422, "invalid_public_key")
    refused = [e["after"] for e in await _audit(api) if e["action"] == "node.enrol.refused"]
    assert refused == [
        {"refused": "malformed token"},
        {"refused": "registration_token_invalid"},
        {"refused": "registration_token_expired"},
    ]
    nodes = await api.http.get("/api/v1/nodes", headers=(await api.operator()).headers)
    assert nodes.json()["items"] == []


async def test_tokens_are_for_admitted_node_operators_and_live_at_most_a_day(
    api: ApiClient,
) -> None:
    op = await api.operator()
    prosumer = await api.signup(Role.PROSUMER)
    wrong_owner = await api.http.post(
        "/api/v1/nodes/registration-tokens",
        json={"owner_id": prosumer.id, "name": "site"},
        headers=op.headers,
    )
    assert_problem(wrong_owner, 422, "node_owner_invalid")
    owner = await api.signup(Role.NODE_OPERATOR)
    too_long = await api.http.post(
        "/api/v1/nodes/registration-tokens",
        json={"owner_id": owner.id, "name": "site", "ttl_s": 86_401},
        headers=op.headers,
    )
    assert_problem(too_long, 422, "validation_error")


async def test_a_node_operator_sees_and_commands_only_its_own_nodes(api: ApiClient) -> None:
    mine = await api.signup(Role.NODE_OPERATOR)
    other = await api.signup(Role.NODE_OPERATOR)
    token = await registration_token(api, mine)
    node_id = (await api.http.post("/api/v1/nodes/enrol", json=_enrol_body(token))).json()[
        "node_id"
    ]
    for method, path in [
        ("GET", f"/api/v1/nodes/{node_id}"),
        ("GET", f"/api/v1/nodes/{node_id}/stats"),
        ("DELETE", f"/api/v1/nodes/{node_id}"),
        ("POST", f"/api/v1/nodes/{node_id}/key-rotation"),
        ("GET", f"/api/v1/nodes/{node_id}/commands"),
    ]:
        response = await api.http.request(method, path, headers=other.headers)
        assert_problem(response, 404, "node_not_found")
    assert (await api.http.get("/api/v1/nodes", headers=other.headers)).json()["items"] == []
    own = await api.http.get(f"/api/v1/nodes/{node_id}", headers=mine.headers)
    assert own.json()["health"] == "pending"
    auditor = await api.signup(Role.AUDITOR)
    seen = await api.http.get(f"/api/v1/nodes/{node_id}", headers=auditor.headers)
    assert seen.status_code == 200


async def test_bad_commands_are_problems_and_change_nothing(api: ApiClient) -> None:
    op = await api.operator()
    unknown = await api.http.post(
        "/api/v1/nodes/nope/commands",
        json={"type": "diagnostics", "payload": {"name": "ping"}},
        headers=op.headers,
    )
    assert_problem(unknown, 404, "node_not_found")
    owner = await api.signup(Role.NODE_OPERATOR)
    token = await registration_token(api, owner)
    node_id = (await api.http.post("/api/v1/nodes/enrol", json=_enrol_body(token))).json()[
        "node_id"
    ]
    for body in (
        {"type": "shell", "payload": {"cmd": "reboot"}},
        {"type": "diagnostics", "payload": {"name": "cat /etc/shadow"}},
        {"type": "device.command", "payload": {"zone": "main", "device_id": "d", "type": "x"}},
    ):
        response = await api.http.post(
            f"/api/v1/nodes/{node_id}/commands", json=body, headers=op.headers
        )
        assert_problem(response, 422, "invalid_command")
    missing = await api.http.get(f"/api/v1/nodes/{node_id}/commands/nope", headers=op.headers)
    assert_problem(missing, 404, "command_not_found")
    listed = await api.http.get(f"/api/v1/nodes/{node_id}/commands", headers=op.headers)
    assert listed.json()["items"] == []
    meter = await api.http.put(f"/api/v1/nodes/{node_id}/meters/nope", headers=op.headers)
    assert_problem(meter, 404, "meter_not_found")


async def test_the_audit_chain_verifies_and_detects_an_edited_row(
    api: ApiClient, state: AppState
) -> None:
    owner = await api.signup(Role.NODE_OPERATOR)
    for _ in range(2):
        token = await registration_token(api, owner)
        assert (await api.http.post("/api/v1/nodes/enrol", json=_enrol_body(token))).is_success
    auditor = await api.signup(Role.AUDITOR)
    verified = await api.http.get("/api/v1/audit/verify", headers=auditor.headers)
    assert verified.json() == {"ok": True, "checked": 4, "first_bad_seq": None, "reason": None}
    async with state.db.write() as session:
        await session.execute(
            update(AuditLogRow).where(AuditLogRow.seq == 2).values(actor="user:someone-else")
        )
    tampered = await api.http.get("/api/v1/audit/verify", headers=auditor.headers)
    assert tampered.json() == {
        "ok": False,
        "checked": 1,
        "first_bad_seq": 2,
        "reason": "entry edited",
    }


async def test_a_command_for_a_node_that_never_links_expires(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    owner = await api.signup(Role.NODE_OPERATOR)
    token = await registration_token(api, owner)
    node_id = (await api.http.post("/api/v1/nodes/enrol", json=_enrol_body(token))).json()[
        "node_id"
    ]
    issued = await api.http.post(
        f"/api/v1/nodes/{node_id}/commands",
        json={"type": "diagnostics", "payload": {"name": "ping"}, "ttl_s": 60},
        headers=owner.headers,
    )
    command_id = issued.json()["id"]
    await state.nodes.evaluate_health()
    path = f"/api/v1/nodes/{node_id}/commands/{command_id}"
    assert (await api.http.get(path, headers=owner.headers)).json()["state"] == "queued"
    clock.advance(60)
    await state.nodes.evaluate_health()
    assert (await api.http.get(path, headers=owner.headers)).json()["state"] == "expired"
    stats = await api.http.get(f"/api/v1/nodes/{node_id}/stats", headers=owner.headers)
    assert stats.json()["queue_depth"] == 0
