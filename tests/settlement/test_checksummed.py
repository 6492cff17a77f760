"""Remembered checksums are the checksums."""

from __future__ import annotations

from eth_utils.address import to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from wattx.settlement.abi import checksummed


@given(st.binary(min_size=20, max_size=20))
def test_a_remembered_checksum_is_the_checksum_of_bytes_and_of_text(raw: bytes) -> None:
    text = "0x" + raw.hex()
    assert checksummed(raw) == to_checksum_address(raw)
    assert checksummed(text) == checksummed(text.upper().replace("0X", "0x"))
    assert checksummed(text) == to_checksum_address(text)
    assert checksummed(raw) == checksummed(raw)  # the second from memory
