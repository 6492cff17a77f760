"""Private files appear whole: a secret created by one start is never read empty by
another starting at the same moment."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

from wattx.private_files import create_private_file, read_or_create_secret, replace_private_file


def test_a_new_file_has_mode_0600_and_the_first_text_wins(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "jwt.key"
    assert create_private_file(path, "first")
    assert not create_private_file(path, "second")
    assert path.read_text(encoding="utf-8") == "first"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["jwt.key"]  # no staging file left


def test_starts_racing_for_a_secret_all_read_the_same_whole_secret(tmp_path: Path) -> None:
    for attempt in range(20):
        path = tmp_path / f"secret-{attempt}.key"
        racers = 8
        barrier = Barrier(racers)

        def start(i: int, path: Path = path, barrier: Barrier = barrier) -> str:
            barrier.wait()
            return read_or_create_secret(path, f"secret-of-racer-{i}-" + "x" * 4096)

        with ThreadPoolExecutor(racers) as pool:
            seen = set(pool.map(start, range(racers)))
        assert len(seen) == 1
        (secret,) = seen
        assert secret.startswith("secret-of-racer-")
        assert secret.endswith("x" * 4096)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"secret-{i}.key" for i in range(20)
    )


def test_a_replaced_file_has_mode_0600_and_only_the_new_bytes(tmp_path: Path) -> None:
    path = tmp_path / "data" / "chain-journal.jsonl"
    path.parent.mkdir(mode=0o700)
    path.write_bytes(b"old and longer\n")
    path.chmod(0o644)
    replace_private_file(path, b"new\n")
    assert path.read_bytes() == b"new\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["chain-journal.jsonl"]
