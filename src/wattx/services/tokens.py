"""Access tokens (short-lived HS256 JWTs) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from wattx.services.errors import InvalidTokenError
from wattx.services.principal import Role

_ALGORITHM = "HS256"
_ISSUED_AT_LEEWAY_S = 60  # tolerated clock difference between replicas


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    role: Role
    session_id: str


class AccessTokenCodec:
    def __init__(self, key: str, ttl_s: int) -> None:
        self._key = key
        self.ttl_s = ttl_s

    def issue(self, claims: AccessClaims, now: datetime) -> str:
        payload = {
            "sub": claims.user_id,
            "role": claims.role.value,
            "sid": claims.session_id,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=self.ttl_s)).timestamp()),
        }
        return jwt.encode(payload, self._key, algorithm=_ALGORITHM)

    def verify(self, token: str, now: datetime) -> AccessClaims:
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                # Times are checked below against the service's clock, not the wall clock:
                # simulations and demos run the service on an injected clock.
                options={
                    "require": ["sub", "sid", "role", "exp", "iat"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
            now_s = int(now.timestamp())
            if int(payload["exp"]) <= now_s:
                raise InvalidTokenError("access token expired")
            if int(payload["iat"]) > now_s + _ISSUED_AT_LEEWAY_S:
                raise InvalidTokenError("access token issued in the future")
            return AccessClaims(str(payload["sub"]), Role(payload["role"]), str(payload["sid"]))
        except (jwt.PyJWTError, ValueError, KeyError) as exc:
            raise InvalidTokenError("access token invalid") from exc


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """Refresh tokens are stored hashed: a leaked table does not log anyone in."""
    return hashlib.sha256(token.encode()).hexdigest()
