"""Seeded random streams: one independent, named stream per purpose.

Every random draw in a run comes from ``random_stream(seed, *labels)``. The
labels (``"pv"``, a household id, ...) are hashed with BLAKE2b, not Python's
salted ``hash``, so the same seed and labels give the same numbers in every
process, and adding a household does not shift the numbers any other one gets.
"""

from __future__ import annotations

import hashlib

import numpy as np


def random_stream(seed: int, *labels: str) -> np.random.Generator:
    """A generator determined only by ``seed`` and ``labels``."""
    words: list[int] = [seed & 0xFFFFFFFF, (seed >> 32) & 0xFFFFFFFF]
    for label in labels:
        digest = hashlib.blake2b(label.encode(), digest_size=8).digest()
        words.extend((int.from_bytes(digest[:4], "big"), int.from_bytes(digest[4:], "big")))
    return np.random.default_rng(np.random.SeedSequence(words))
