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
_VERIFIED_CACHE_SIZE = 50_000


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    role: Role
    session_id: str


@dataclass(frozen=True, slots=True)
class _VerifiedToken:
    claims: AccessClaims
    issued_at_s: int
    expires_at_s: int


class AccessTokenCodec:
    """Issues and verifies access tokens.

    A token whose signature has been checked is remembered (by its exact text,
    up to ``_VERIFIED_CACHE_SIZE`` of them): the same bytes cannot carry other
    claims, so a repeat only needs its times checked again. Parsing and the
    HMAC were the largest single cost of an authenticated request.
    """

    def __init__(self, key: str, ttl_s: int) -> None:
        self._key = key
        self.ttl_s = ttl_s
        self._verified: dict[str, _VerifiedToken] = {}

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
        verified = self._verified.get(token)
        if verified is None:
            verified = self._verify_signature(token)
            if len(self._verified) >= _VERIFIED_CACHE_SIZE:
                # Oldest first: dicts keep insertion order.
                del self._verified[next(iter(self._verified))]
            self._verified[token] = verified
        now_s = int(now.timestamp())
        if verified.expires_at_s <= now_s:
            raise InvalidTokenError("access token expired")
        if verified.issued_at_s > now_s + _ISSUED_AT_LEEWAY_S:
            raise InvalidTokenError("access token issued in the future")
        return verified.claims

    def _verify_signature(self, token: str) -> _VerifiedToken:
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
            claims = AccessClaims(str(payload["sub"]), Role(payload["role"]), str(payload["sid"]))
            return _VerifiedToken(claims, int(payload["iat"]), int(payload["exp"]))
        except (jwt.PyJWTError, ValueError, KeyError) as exc:
            raise InvalidTokenError("access token invalid") from exc


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def hash_refresh_token(token: str) -> str:
    """Refresh tokens are stored hashed: a leaked table does not log anyone in."""
    return hashlib.sha256(token.encode()).hexdigest()
