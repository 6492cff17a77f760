"""Files only the service's own user may read: the data directory, keys, the database,
the chain journal.

Each is created with its final mode in the same system call that creates it
(``os.open`` with a mode, ``mkdir`` with a mode), never written first and
restricted afterwards, so there is no moment at which another local user could
open it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import IO, BinaryIO

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (mode 0700) unless it exists; its parents get the usual mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_dir():
        path.mkdir(mode=DIR_MODE, exist_ok=True)
    return path


def create_private_file(path: Path, text: str) -> bool:
    """Write ``text`` to a new file of mode 0600; ``False`` (and nothing written) if
    ``path`` already exists, so that two starts racing keep the first one's file.

    The file appears whole or not at all: the text is written and synced under a
    temporary name first and then hard-linked to ``path`` (which fails if ``path``
    exists), so a second process starting at the same moment never reads it empty.
    """
    private_dir(path.parent)
    if path.exists():
        return False
    staging = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(staging, path)
        except FileExistsError:
            return False
    finally:
        staging.unlink(missing_ok=True)
    return True


def replace_private_file(path: Path, data: bytes) -> None:
    """Make ``path`` hold ``data`` (mode 0600), whole or not at all: written and synced
    under a temporary name, renamed over ``path``, and the directory synced, so a crash
    leaves either the old file or the new one."""
    private_dir(path.parent)
    staging = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def touch_private_file(path: Path) -> None:
    """Create an empty file of mode 0600 if there is none (for SQLite: its WAL and
    shared-memory files take the database file's mode)."""
    private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE))


def open_private_append(path: Path) -> BinaryIO:
    """``path`` opened for appending bytes, unbuffered, created with mode 0600 if missing."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    return os.fdopen(fd, "ab", buffering=0)


def write_whole(file: IO[bytes], data: bytes) -> None:
    """Write all of ``data`` to ``file`` (opened unbuffered, as :func:`open_private_append`
    opens it), where one write may take only a part."""
    written = 0
    while written < len(data):
        written += file.write(data[written:]) or 0


def read_or_create_secret(path: Path, make: str) -> str:
    """The secret stored in ``path``, or ``make`` stored there (mode 0600) first."""
    create_private_file(path, make)
    return path.read_text(encoding="utf-8").strip()
