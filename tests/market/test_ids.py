"""Identifiers (``wattx.domain.ids``): exactly the text of a version-4 UUID, or of a
version-7 one in the order drawn (docs/api.md, "Orders")."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from wattx.domain.ids import new_id, new_time_ordered_id

_EITHER_KIND = pytest.mark.parametrize(
    "draw_one", [new_id, new_time_ordered_id], ids=["random", "time-ordered"]
)


def test_new_ids_are_version_4_uuids_in_hex_and_do_not_repeat() -> None:
    ids = [new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(hex=text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert parsed.hex == text  # 32 lowercase hex digits, no dashes


def test_every_random_bit_of_a_uuid_varies() -> None:
    # The mask must clear only the version and variant bits: the other 122 all take
    # both values across a few hundred ids.
    values = [int(new_id(), 16) for _ in range(400)]
    fixed = (0xF << 76) | (0x3 << 62)
    ones = zeros = 0
    for value in values:
        ones |= value
        zeros |= ~value
    varying = ones & zeros & ((1 << 128) - 1)
    assert varying == ((1 << 128) - 1) & ~fixed


@_EITHER_KIND
def test_threads_drawing_at_once_get_distinct_ids(draw_one: Callable[[], str]) -> None:
    def draw(_: int) -> list[str]:
        return [draw_one() for _ in range(5_000)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        drawn = [i for batch in pool.map(draw, range(8)) for i in batch]
    assert len(set(drawn)) == len(drawn) == 40_000


@_EITHER_KIND
def test_a_forked_child_does_not_repeat_its_parents_ids(draw_one: Callable[[], str]) -> None:
    # Random ids are drawn ahead in bulk, and time-ordered ones from a generator seeded
    # once: a child must inherit neither what its parent has yet to hand out nor its seed.
    draw_one()  # the parent now holds ids drawn ahead, its generator seeded
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child draws in the same milliseconds as its parent
        os.close(read_end)
        os.write(write_end, " ".join(draw_one() for _ in range(2_000)).encode())
        os._exit(0)
    os.close(write_end)
    parents = {draw_one() for _ in range(2_000)}
    with os.fdopen(read_end) as from_child:
        childs = set(from_child.read().split())
    os.waitpid(pid, 0)
    assert len(childs) == 2_000
    assert not childs & parents


def test_time_ordered_ids_are_version_7_uuids_in_hex_in_the_order_drawn() -> None:
    before_ms = time.time_ns() // 1_000_000
    ids = [new_time_ordered_id() for _ in range(20_000)]
    after_ms = time.time_ns() // 1_000_000
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)  # strictly increasing, within a millisecond too
    for text in ids:
        parsed = uuid.UUID(hex=text)
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert parsed.hex == text
    # The first 48 bits are the milliseconds since the epoch at which each was drawn.
    assert before_ms <= int(ids[0][:12], 16) <= int(ids[-1][:12], 16) <= after_ms
