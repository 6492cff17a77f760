"""The live-session cache's rules, with the clock passed in."""

from __future__ import annotations

import pytest

from wattx.services.identity import live_sessions
from wattx.services.identity.live_sessions import LiveSessions
from wattx.services.principal import Principal, Role, UserStatus

CACHE_S = 2.0


def principal(n: int, user: str | None = None) -> Principal:
    return Principal(user or f"user-{n}", Role.CONSUMER, UserStatus.ADMITTED, f"session-{n}")


def cache(share: float = 1.0) -> LiveSessions:
    return LiveSessions(CACHE_S, jitter=lambda: share)


def test_a_session_is_trusted_for_its_share_of_the_cache_time_and_for_its_user_only() -> None:
    sessions = cache(share=0.75)
    sessions.remember(principal(1), read_at=10.0)
    assert sessions.get("session-1", "user-1", now=10.0) == principal(1)
    assert sessions.get("session-1", "user-1", now=11.49) == principal(1)
    assert sessions.get("session-1", "user-1", now=11.5) is None  # 10 + 0.75 × 2
    assert sessions.get("session-1", "user-2", now=10.0) is None
    assert sessions.get("session-2", "user-2", now=10.0) is None


def test_the_default_share_lies_between_half_and_all_of_the_cache_time() -> None:
    sessions = LiveSessions(CACHE_S)
    for n in range(200):
        sessions.remember(principal(n), read_at=0.0)
    trusted_at = [
        sum(sessions.get(f"session-{n}", f"user-{n}", now=t) is not None for n in range(200))
        for t in (0.999, 1.5, 2.0)
    ]
    assert trusted_at[0] == 200
    assert 0 < trusted_at[1] < 200
    assert trusted_at[2] == 0


def test_due_are_the_sessions_used_since_their_read_expiring_within_half_the_cache_time() -> None:
    sessions = cache()
    sessions.remember(principal(1), read_at=0.0)  # expires at 2.0
    sessions.remember(principal(2), read_at=0.0)  # expires at 2.0, never used
    sessions.remember(principal(3), read_at=0.5)  # expires at 2.5
    assert sessions.get("session-1", "user-1", now=0.2) is not None
    assert sessions.get("session-3", "user-3", now=0.6) is not None
    assert sessions.due(now=0.9) == []  # nothing expires before 1.9
    assert sessions.due(now=1.3) == []  # looked less than a quarter of the cache time ago
    assert sessions.due(now=1.5) == ["session-1", "session-3"]  # soonest first


def test_a_session_read_again_is_not_due_until_used_again() -> None:
    sessions = cache()
    sessions.remember(principal(1), read_at=0.0)
    sessions.get("session-1", "user-1", now=0.1)
    assert sessions.due(now=1.5) == ["session-1"]
    sessions.remember(principal(1), read_at=1.5)  # expires at 3.5
    assert sessions.due(now=3.0) == []
    sessions.get("session-1", "user-1", now=3.1)
    assert sessions.due(now=3.6) == ["session-1"]  # expired, but used since its read


def test_at_most_max_due_ride_along_the_soonest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_sessions, "MAX_DUE", 3)
    sessions = cache()
    for n in range(6):
        sessions.remember(principal(n), read_at=n / 10)
        sessions.get(f"session-{n}", f"user-{n}", now=0.6)
    assert sessions.due(now=1.6) == ["session-0", "session-1", "session-2"]


def test_forgotten_sessions_are_neither_trusted_nor_due() -> None:
    sessions = cache()
    sessions.remember(principal(1), read_at=0.0)
    sessions.remember(principal(2, user="user-x"), read_at=0.0)
    sessions.remember(principal(3, user="user-x"), read_at=0.0)
    for n, user in ((1, "user-1"), (2, "user-x"), (3, "user-x")):
        sessions.get(f"session-{n}", user, now=0.1)
    sessions.forget("session-1", now=0.15)
    sessions.forget_user("user-x", now=0.15)
    assert sessions.get("session-1", "user-1", now=0.2) is None
    assert sessions.get("session-2", "user-x", now=0.2) is None
    assert sessions.due(now=1.5) == []


def test_a_cache_time_of_zero_keeps_nothing() -> None:
    sessions = LiveSessions(0.0)
    sessions.remember(principal(1), read_at=0.0)
    assert not sessions.enabled
    assert sessions.get("session-1", "user-1", now=0.0) is None


def test_a_flood_of_sessions_starts_the_cache_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_sessions, "MAX_ENTRIES", 3)
    sessions = cache()
    for n in range(4):
        sessions.remember(principal(n), read_at=0.0)
    assert sessions.get("session-0", "user-0", now=0.1) is None
    assert sessions.get("session-3", "user-3", now=0.1) == principal(3)


def test_a_read_sent_before_a_forgetting_is_not_remembered() -> None:
    # A read sent at 1.0 may have seen the session before its logout (at 1.2) committed.
    sessions = cache()
    sessions.forget("session-1", now=1.2)
    sessions.remember(principal(1), read_at=1.0)
    assert sessions.get("session-1", "user-1", now=1.3) is None
    sessions.remember(principal(1), read_at=1.2)  # sent at the same instant: not after it
    assert sessions.get("session-1", "user-1", now=1.3) is None
    sessions.remember(principal(1), read_at=1.25)  # sent after: it saw what was committed
    assert sessions.get("session-1", "user-1", now=1.3) == principal(1)


def test_a_read_sent_before_a_users_sessions_were_forgotten_is_not_remembered() -> None:
    sessions = cache()
    sessions.forget_user("user-x", now=1.2)
    sessions.remember(principal(1, user="user-x"), read_at=1.0)
    sessions.remember(principal(2, user="user-y"), read_at=1.0)
    assert sessions.get("session-1", "user-x", now=1.3) is None
    assert sessions.get("session-2", "user-y", now=1.3) == principal(2, user="user-y")
    sessions.remember(principal(1, user="user-x"), read_at=1.3)
    assert sessions.get("session-1", "user-x", now=1.4) == principal(1, user="user-x")


def test_forgettings_are_kept_long_enough_and_pruned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live_sessions, "_FORGOTTEN_MAX", 3)
    sessions = cache()
    kept = live_sessions.FORGOTTEN_KEPT_S
    for n in range(3):
        sessions.forget(f"session-{n}", now=float(n))
    # A fourth forgetting, long after: the old ones go, the recent one stays.
    sessions.forget("session-3", now=1.5 + kept)
    sessions.remember(principal(0), read_at=0.5)
    sessions.remember(principal(2), read_at=1.5)
    assert sessions.get("session-0", "user-0", now=1.0) == principal(0)
    assert sessions.get("session-2", "user-2", now=1.6) is None
