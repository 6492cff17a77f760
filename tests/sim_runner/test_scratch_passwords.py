"""Passwords: the simulator's scratch service hashes cheaply, every other service as before."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

from service.accounts import bare_account_service
from wattx.domain.epochs import EpochSchedule
from wattx.sim.runner.client import API
from wattx.sim.runner.clock import VirtualClock
from wattx.sim.runner.scratch import scratch_service
from wattx.store import Database, upgrade_to_head
from wattx.store import accounts as repo

STANDARD_PARAMETERS = "$argon2id$v=19$m=65536,t=3,p=4$"
SCRATCH_PARAMETERS = "$argon2id$v=19$m=8,t=1,p=1$"


async def _stored_hash(db: Database, email: str) -> str:
    async with db.read() as session:
        user = await repo.user_by_email(session, email)
    assert user is not None
    assert user.password_hash is not None
    return user.password_hash


async def test_the_scratch_service_hashes_at_the_minimum_cost_and_still_checks_passwords() -> None:
    clock = VirtualClock(datetime(2026, 6, 1, 8, tzinfo=UTC))
    async with scratch_service(EpochSchedule(), clock) as service:
        assert service.state is not None
        email = f"member-{secrets.token_hex(4)}@community.wattx.test"
        await service.client.sign_up(email, "a member's password", "Member", "consumer")

        assert (await _stored_hash(service.state.db, email)).startswith(SCRATCH_PARAMETERS)
        session = await service.client.login(email, "a member's password")
        assert session.access_token
        wrong = await service.client.call(
            "POST", f"{API}/auth/login", json={"email": email, "password": "not the password"}
        )
        assert wrong.status == 401
        unknown = await service.client.call(
            "POST",
            f"{API}/auth/login",
            json={"email": "nobody@community.wattx.test", "password": "a member's password"},
        )
        assert unknown.status == 401


async def test_an_account_service_without_a_hasher_keeps_the_service_parameters(
    tmp_path: Path,
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'accounts.sqlite3'}")
    try:
        await upgrade_to_head(db)
        accounts = bare_account_service(db)
        email = f"member-{secrets.token_hex(4)}@community.wattx.test"
        await accounts.create_operator(
            email=email, password="an operator's password", display_name="Operator"
        )

        assert (await _stored_hash(db, email)).startswith(STANDARD_PARAMETERS)
        assert await accounts.login_password(email=email, password="an operator's password")
    finally:
        await db.dispose()
