"""Password hashing and checking run off the event loop and outside any transaction.

One Argon2 operation at the service's cost takes about 0.1 s of CPU; on the event loop it
would hold up every other request of the process, and inside the write transaction it
would hold the write lock as long.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from wattx.services.errors import InvalidCredentialsError
from wattx.services.identity.accounts import AccountService
from wattx.store import Database, upgrade_to_head

from .accounts import bare_account_service

PASSWORD = "a member's password"


class WatchedHasher(PasswordHasher):
    """Argon2id at its minimum cost that notes the thread of every hash and check, and
    runs ``during_check`` inside each check (to change the account meanwhile)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8, parallelism=1)
        self.threads: list[int] = []
        self.during_check: Callable[[], None] = lambda: None

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.threads.append(threading.get_ident())
        return super().hash(password, salt=salt)

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.threads.append(threading.get_ident())
        verified = super().verify(hash, password)
        self.during_check()
        return verified


@pytest.fixture
async def accounts(tmp_path: Path) -> AsyncIterator[tuple[AccountService, WatchedHasher, Path]]:
    path = tmp_path / "accounts.sqlite3"
    db = Database(f"sqlite+aiosqlite:///{path}")
    hasher = WatchedHasher()
    try:
        await upgrade_to_head(db)
        yield bare_account_service(db, hasher), hasher, path
    finally:
        await db.dispose()


def _run_sql(path: Path, statement: str, *parameters: Any) -> None:
    """A change made by another writer, on a connection of its own."""
    with sqlite3.connect(path) as connection:
        connection.execute(statement, parameters)


async def test_sign_up_and_login_hash_and_check_off_the_event_loop(
    accounts: tuple[AccountService, WatchedHasher, Path],
) -> None:
    service, hasher, _ = accounts
    email = f"member-{secrets.token_hex(4)}@community.wattx.test"
    await service.create_operator(email=email, password=PASSWORD, display_name="Member")
    assert await service.login_password(email=email, password=PASSWORD)
    with pytest.raises(InvalidCredentialsError):
        await service.login_password(email="nobody@community.wattx.test", password=PASSWORD)

    assert len(hasher.threads) == 4  # a hash, two checks, and the unknown email's dummy hash
    assert threading.get_ident() not in hasher.threads


CHANGES = {
    "password changed": ("UPDATE users SET password_hash = 'another hash' WHERE email = ?"),
    "suspended": "UPDATE users SET status = 'suspended' WHERE email = ?",
    "deleted": "DELETE FROM users WHERE email = ?",
}


@pytest.mark.parametrize("statement", CHANGES.values(), ids=CHANGES.keys())
async def test_a_login_whose_account_changed_during_the_check_is_refused(
    accounts: tuple[AccountService, WatchedHasher, Path], statement: str
) -> None:
    service, hasher, path = accounts
    email = f"member-{secrets.token_hex(4)}@community.wattx.test"
    await service.create_operator(email=email, password=PASSWORD, display_name="Member")
    hasher.during_check = lambda: _run_sql(path, statement, email)

    with pytest.raises(InvalidCredentialsError):
        await service.login_password(email=email, password=PASSWORD)
