"""Random identifiers (``wattx.domain.ids``): exactly the text of a version-4 UUID."""

from __future__ import annotations

import uuid

from wattx.domain.ids import new_id


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
