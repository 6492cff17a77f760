"""An account service on a bare database, without the app, for tests of password handling."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher

from wattx.domain.epochs import SystemClock
from wattx.services.identity.accounts import AccountService
from wattx.services.identity.tokens import AccessTokenCodec
from wattx.store import Database


def bare_account_service(
    db: Database, password_hasher: PasswordHasher | None = None
) -> AccountService:
    """Accounts on ``db`` (migrated), with a random token key and the system clock;
    ``password_hasher`` as ``AccountService`` takes it (None: the service's own)."""
    return AccountService(
        db,
        AccessTokenCodec(secrets.token_urlsafe(48), 900),
        SystemClock(),
        refresh_ttl_s=3600,
        nonce_ttl_s=300,
        password_hasher=password_hasher,
    )
