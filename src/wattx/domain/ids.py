"""Identifiers: a UUID written as 32 lowercase hex digits, random (version 4) or, for
the rows the market writes by the thousand, time-ordered (version 7, RFC 9562)."""

from __future__ import annotations

import os
from collections import deque

import uuid_utils

# A version-4 UUID is 122 random bits with the version (0100) in bits 76-79 and the
# RFC 4122 variant (10) in bits 62-63, counting from the least significant.
_CLEAR = ~((0xF << 76) | (0x3 << 62))
_SET = (0x4 << 76) | (0x2 << 62)
_DRAWN_AT_ONCE = 256

# Ids drawn ahead. deque's append and popleft are atomic, so threads may share it; a
# forked child starts with none, or it would hand out the ids its parent hands out.
_ahead: deque[str] = deque()
os.register_at_fork(after_in_child=_ahead.clear)


def new_id() -> str:
    """What ``uuid.uuid4().hex`` returns, in about a third of its time.

    Every request gets one (its request id), and so does every order and trade; the
    ``uuid.UUID`` object that ``uuid4()`` builds on the way was a few percent of the
    service's time in a batch of orders, and so, after it, was a system call for 16
    random bytes per id: the bytes of :data:`_DRAWN_AT_ONCE` ids are now read at once.
    """
    while True:
        try:
            return _ahead.popleft()
        except IndexError:
            _draw()


def _draw() -> None:
    raw = os.urandom(16 * _DRAWN_AT_ONCE)
    _ahead.extend(
        f"{int.from_bytes(raw[i : i + 16], 'big') & _CLEAR | _SET:032x}"
        for i in range(0, len(raw), 16)
    )


# Its generator is seeded once per process; a forked child must not draw what its parent draws.
os.register_at_fork(after_in_child=uuid_utils.reseed_rng)


def new_time_ordered_id() -> str:
    """A version-7 UUID: the milliseconds since the epoch, then random bits; ids drawn
    later in this process compare greater (a counter orders those of one millisecond).

    For orders and trades: their primary-key index then grows at its end, where a random
    key would land on any page of it. With a million orders in a SQLite table, an insert
    took 17.7 µs and dirtied a page of the index per row (a 1,000-order batch wrote 7.1 MB
    to the WAL); in time order 7.5 µs and 2.2 MB (``bench/order_inserts.py``;
    docs/operations.md, "Orders and trades keyed in time order"). The id tells the
    millisecond it was made, which the order's or trade's own time tells anyway.
    """
    return uuid_utils.uuid7().hex
