"""Access tokens are judged by the service's clock, so an injected clock works."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wattx.services.errors import InvalidTokenError
from wattx.services.identity.tokens import AccessClaims, AccessTokenCodec
from wattx.services.principal import Role

KEY = "k" * 32
CLAIMS = AccessClaims("user-1", Role.CONSUMER, "session-1")


@pytest.mark.parametrize("offset", [timedelta(days=-400), timedelta(0), timedelta(days=400)])
def test_a_token_issued_on_any_service_clock_verifies_on_it(offset: timedelta) -> None:
    tokens = AccessTokenCodec(KEY, ttl_s=900)
    now = datetime.now(UTC) + offset
    assert tokens.verify(tokens.issue(CLAIMS, now), now + timedelta(seconds=899)) == CLAIMS


def test_expiry_follows_the_service_clock() -> None:
    tokens = AccessTokenCodec(KEY, ttl_s=900)
    now = datetime(2030, 6, 1, tzinfo=UTC)
    token = tokens.issue(CLAIMS, now)
    with pytest.raises(InvalidTokenError):
        tokens.verify(token, now + timedelta(seconds=900))


def test_a_token_issued_after_the_service_clock_is_refused() -> None:
    tokens = AccessTokenCodec(KEY, ttl_s=900)
    now = datetime(2030, 6, 1, tzinfo=UTC)
    token = tokens.issue(CLAIMS, now + timedelta(minutes=10))
    with pytest.raises(InvalidTokenError):
        tokens.verify(token, now)
