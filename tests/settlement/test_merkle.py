from __future__ import annotations

import pytest
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from wattx.settlement.merkle import EMPTY_ROOT, MerkleTree, hash_pair, verify_proof


def leaves(n: int) -> list[bytes]:
    return [keccak(i.to_bytes(4, "big")) for i in range(n)]


def test_pair_hash_is_order_independent() -> None:
    a, b = leaves(2)
    assert hash_pair(a, b) == hash_pair(b, a) == keccak(min(a, b) + max(a, b))


def test_roots_of_small_trees() -> None:
    assert MerkleTree([]).root == EMPTY_ROOT
    (only,) = leaves(1)
    assert MerkleTree([only]).root == only
    assert MerkleTree([only]).proof(0) == []
    a, b, c = leaves(3)
    # The odd node moves up unchanged.
    assert MerkleTree([a, b, c]).root == hash_pair(hash_pair(a, b), c)


@settings(deadline=None, max_examples=40)
@given(st.integers(min_value=1, max_value=70))
def test_every_leaf_proves_and_a_stranger_does_not(n: int) -> None:
    tree = MerkleTree(leaves(n))
    stranger = keccak(b"not in the tree")
    for i, leaf in enumerate(leaves(n)):
        proof = tree.proof(i)
        assert verify_proof(tree.root, leaf, proof)
        assert not verify_proof(tree.root, stranger, proof)


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        MerkleTree([b"short"])
    with pytest.raises(IndexError):
        MerkleTree(leaves(2)).proof(2)
