"""Two registration tokens made at the same moment for one owner both work, on SQLite
and PostgreSQL.

On PostgreSQL the second used to answer 409: in a database without audit entries yet,
both requests found no head of the audit chain and both inserted it, and the loser's
commit failed on the head's key. The head is now inserted ``ON CONFLICT DO NOTHING``
and then locked, so the two entries queue on it."""

from __future__ import annotations

import asyncio
import os

from service.client import ApiClient
from wattx.nodes import challenge
from wattx.services.principal import Role


async def test_two_registration_tokens_made_at_once_for_one_owner_both_work(
    api: ApiClient,
) -> None:
    op = await api.operator()
    owner = await api.signup(Role.NODE_OPERATOR)
    made = await asyncio.gather(
        *(
            api.http.post(
                "/api/v1/nodes/registration-tokens",
                json={"owner_id": owner.id, "name": f"site-{i}"},
                headers=op.headers,
            )
            for i in range(2)
        )
    )
    for answer in made:
        assert answer.status_code == 201, answer.text
    tokens = [answer.json()["token"] for answer in made]
    assert tokens[0] != tokens[1]

    # Both are in the audit chain, one after the other, and the chain still verifies.
    entries = await api.http.get(
        "/api/v1/audit", params={"action": "node.registration_token.created"}, headers=op.headers
    )
    assert entries.status_code == 200, entries.text
    assert len(entries.json()["items"]) == 2
    check = await api.http.get("/api/v1/audit/verify", headers=op.headers)
    assert check.status_code == 200, check.text
    assert check.json()["ok"] is True
    assert check.json()["checked"] == 2

    # Each token enrols a node of its own.
    for token in tokens:
        key = challenge.public_key_hex(os.urandom(32))
        enrolled = await api.http.post(
            "/api/v1/nodes/enrol", json={"registration_token": token, "public_key": key}
        )
        assert enrolled.status_code == 201, enrolled.text
