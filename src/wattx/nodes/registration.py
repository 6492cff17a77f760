"""One-time registration tokens: how they look, how they are stored, when they are spent.

A token is shown once, to the operator who creates it; the service keeps only
its SHA-256. It is spent by the first successful enrolment and lives at most
24 hours.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime

from wattx.nodes.errors import (
    InvalidTokenLifetimeError,
    RegistrationTokenExpiredError,
    RegistrationTokenUsedError,
)

TOKEN_PREFIX = "wxr_"
MIN_TTL_S = 60
MAX_TTL_S = 24 * 3600
DEFAULT_TTL_S = 3600
TOKEN_PATTERN = re.compile(r"^wxr_[A-Za-z0-9_-]{43}$")


def new_registration_token() -> str:
    """A fresh token: the prefix and 32 random bytes, URL-safe base64."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def is_well_formed(token: str) -> bool:
    return TOKEN_PATTERN.fullmatch(token) is not None


def token_hash(token: str) -> str:
    """What is stored: the hex SHA-256 of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_lifetime(ttl_s: int) -> int:
    if not MIN_TTL_S <= ttl_s <= MAX_TTL_S:
        raise InvalidTokenLifetimeError(
            f"ttl_s must be between {MIN_TTL_S} and {MAX_TTL_S}", ttl_s=ttl_s
        )
    return ttl_s


def check_redeemable(*, expires_at: datetime, used_at: datetime | None, now: datetime) -> None:
    """Raise unless a token with this record can enrol a node at ``now``."""
    if used_at is not None:
        raise RegistrationTokenUsedError("this registration token was already used")
    if now >= expires_at:
        raise RegistrationTokenExpiredError("this registration token has expired")
