"""Sessions found live, trusted for a while without a database read.

Each entry is trusted until a time drawn between half of the cache time and all of
it after its session was read, so clients that start together are not all due at
the same instant. When a request finds its own entry missing or expired, the read
it makes also takes the entries that are *due* — used since their last read and
expiring within half the cache time — so that a process serving many busy sessions
reads them together, about once per half cache time, instead of once per session
and cache time. Entries nobody used since their last read are left to expire.

A session forgotten (a logout, a revoked refresh token) or a user whose sessions are
forgotten (suspended, given another role) is not remembered from a read sent before
that: the read may have seen the session before its revocation committed, and this
process must stop trusting it at once.

The times are ``time.monotonic()`` readings passed in, so the rules can be checked
without waiting.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from wattx.services.principal import Principal

MAX_ENTRIES = 100_000
"""More entries than this and the cache starts again empty (a flood of one-use tokens)."""
MAX_DUE = 500
"""At most this many due entries ride along with one read."""
FORGOTTEN_KEPT_S = 300.0
"""How long a forgetting is kept to refuse reads sent before it (far longer than a read)."""
_FORGOTTEN_MAX = 10_000


class LiveSessions:
    """The cache of one process: session id → the principal its last read gave.

    Looking for due entries walks the sessions used since their last read, so it is
    done at most once per quarter of the cache time: a read in between (a new
    session's first request) takes only its own session.
    """

    def __init__(
        self, cache_s: float, *, jitter: Callable[[], float] = lambda: random.uniform(0.5, 1.0)
    ) -> None:
        """``cache_s`` of 0 caches nothing; ``jitter`` gives the share of ``cache_s`` an
        entry is trusted for (between 0.5 and 1 unless a test says otherwise)."""
        self._cache_s = cache_s
        self._jitter = jitter
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._used: set[str] = set()  # used since their last read
        self._next_sweep = float("-inf")
        # When each session and user was last forgotten.
        self._forgotten_sessions: dict[str, float] = {}
        self._forgotten_users: dict[str, float] = {}

    @property
    def enabled(self) -> bool:
        return self._cache_s > 0

    def get(self, session_id: str, user_id: str, now: float) -> Principal | None:
        """The cached principal of a session, if trusted at ``now`` and of ``user_id``."""
        entry = self._entries.get(session_id)
        # The cache vouches for the session, so only for a token of that session's user.
        if entry is None or entry[0] <= now or entry[1].user_id != user_id:
            return None
        self._used.add(session_id)
        return entry[1]

    def due(self, now: float) -> list[str]:
        """Sessions worth re-reading along with a read made at ``now``: used since their
        last read and expiring within half the cache time, the soonest first, at most
        :data:`MAX_DUE`; none if the last look was less than a quarter of the cache
        time ago."""
        if now < self._next_sweep:
            return []
        self._next_sweep = now + self._cache_s / 4
        horizon = now + self._cache_s / 2
        due = []
        for session_id in self._used:
            entry = self._entries.get(session_id)
            if entry is not None and entry[0] <= horizon:
                due.append((entry[0], session_id))
        due.sort()
        return [session_id for _, session_id in due[:MAX_DUE]]

    def remember(self, principal: Principal, read_at: float) -> None:
        """A session read live; ``read_at`` is when the read was sent. Nothing is
        remembered of a read sent before the session or its user was forgotten."""
        if not self.enabled:
            return
        never = float("-inf")
        if (
            self._forgotten_sessions.get(principal.session_id, never) >= read_at
            or self._forgotten_users.get(principal.user_id, never) >= read_at
        ):
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
            self._used.clear()
        expires = read_at + self._cache_s * self._jitter()
        self._entries[principal.session_id] = (expires, principal)
        self._used.discard(principal.session_id)

    def forget(self, session_id: str, now: float) -> None:
        """Trust the session no more, nor a read of it sent before ``now``."""
        self._drop(session_id)
        _mark(self._forgotten_sessions, session_id, now)

    def forget_user(self, user_id: str, now: float) -> None:
        """Trust none of the user's sessions, nor a read of one sent before ``now``."""
        stale = [sid for sid, (_, p) in self._entries.items() if p.user_id == user_id]
        for session_id in stale:
            self._drop(session_id)
        _mark(self._forgotten_users, user_id, now)

    def _drop(self, session_id: str) -> None:
        self._entries.pop(session_id, None)
        self._used.discard(session_id)


def _mark(forgotten: dict[str, float], key: str, now: float) -> None:
    if len(forgotten) >= _FORGOTTEN_MAX:
        for old in [k for k, at in forgotten.items() if at < now - FORGOTTEN_KEPT_S]:
            del forgotten[old]
    forgotten[key] = now
