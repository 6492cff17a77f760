"""The link hub's sweep for due commands: which of the nodes asked about have a command
to send now (queued or sent, its next attempt reached), whatever else is due elsewhere."""

from __future__ import annotations

import os
from datetime import timedelta

from service.client import ApiClient
from service.conftest import ManualClock
from wattx.api.state import AppState
from wattx.nodes import challenge
from wattx.services.principal import Role

from .conftest import registration_token


async def _node(api: ApiClient) -> str:
    owner = await api.signup(Role.NODE_OPERATOR)
    token = await registration_token(api, owner)
    body = {"registration_token": token, "public_key": challenge.public_key_hex(os.urandom(32))}
    response = await api.http.post("/api/v1/nodes/enrol", json=body)
    assert response.status_code == 201, response.text
    node_id: str = response.json()["node_id"]
    return node_id


async def _command(api: ApiClient, node_id: str, **extra: object) -> None:
    op = await api.operator()
    response = await api.http.post(
        f"/api/v1/nodes/{node_id}/commands",
        json={"type": "diagnostics", "payload": {"name": "ping"}, **extra},
        headers=op.headers,
    )
    assert response.status_code == 201, response.text


async def test_only_the_nodes_asked_about_with_a_command_due_now(
    api: ApiClient, state: AppState, clock: ManualClock
) -> None:
    now_due, later, idle, elsewhere = [await _node(api) for _ in range(4)]
    await _command(api, now_due)
    await _command(api, later, not_before=(clock.now() + timedelta(minutes=5)).isoformat())
    await _command(api, elsewhere)  # due, but linked to another process: not asked about
    asked = [now_due, later, idle]

    assert await state.nodes.nodes_with_due_commands(asked) == {now_due}
    assert await state.nodes.nodes_with_due_commands([]) == set()

    clock.advance(5 * 60)
    assert await state.nodes.nodes_with_due_commands(asked) == {now_due, later}

    # Sent, its retry not yet due: not swept until its next attempt.
    sent = await state.nodes.take_due_commands(now_due)
    assert [c["type"] for c in sent] == ["diagnostics"]
    assert await state.nodes.nodes_with_due_commands(asked) == {later}
    clock.advance(state.settings.node_command_retry_s + 1)
    assert await state.nodes.nodes_with_due_commands(asked) == {now_due, later}
