"""A Merkle tree with sorted-pair hashing, as OpenZeppelin's ``MerkleProof`` checks it.

A parent is ``keccak256(min(a, b) || max(a, b))``, so a proof is only the list
of siblings from the leaf up, with no left/right flags. On a level with an odd
number of nodes the last node moves up unchanged (and adds nothing to the
proofs below it). The root of one leaf is the leaf; the root of no leaves is 32
zero bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_utils.crypto import keccak

EMPTY_ROOT = bytes(32)


def hash_pair(a: bytes, b: bytes) -> bytes:
    """The parent of two nodes, independent of their order."""
    return keccak(a + b) if a < b else keccak(b + a)


class MerkleTree:
    """All levels of the tree over ``leaves`` (in the given order), for proofs."""

    __slots__ = ("_levels",)

    def __init__(self, leaves: Sequence[bytes]) -> None:
        if any(len(leaf) != 32 for leaf in leaves):
            raise ValueError("every leaf must be 32 bytes")
        levels: list[list[bytes]] = [list(leaves)]
        while len(levels[-1]) > 1:
            below = levels[-1]
            above = [hash_pair(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            if len(below) % 2:
                above.append(below[-1])
            levels.append(above)
        self._levels = levels

    @property
    def root(self) -> bytes:
        top = self._levels[-1]
        return top[0] if top else EMPTY_ROOT

    def __len__(self) -> int:
        return len(self._levels[0])

    def proof(self, index: int) -> list[bytes]:
        """The siblings of leaf ``index`` from the bottom level up."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        siblings: list[bytes] = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                siblings.append(level[sibling])
            index //= 2
        return siblings


def root_from_proof(leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root ``proof`` leads to from ``leaf``."""
    node = leaf
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node


def verify_proof(root: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
    """True if ``proof`` leads from ``leaf`` to ``root``."""
    return root_from_proof(leaf, proof) == root
