"""Free space where the service writes its files (SQLite, the embedded chain's journal).

A full disk does not fail every write: SQLite reuses pages of its WAL, so some
commits still go through while others fail for want of a page, and a journal
append fails while the database commits. Readiness therefore looks at the free
space itself, not only at the last write.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

MIN_FREE_BYTES = 1 << 20
"""Below this much free space (1 MiB) the storage counts as full."""


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the filesystem holding ``path``."""
    return shutil.disk_usage(path).free


def space_left(directories: Iterable[Path]) -> bool:
    """Whether every one of ``directories`` has at least :data:`MIN_FREE_BYTES` free;
    a directory that cannot be looked at counts as full."""
    for directory in directories:
        try:
            if free_bytes(directory) < MIN_FREE_BYTES:
                return False
        except OSError:
            return False
    return True
