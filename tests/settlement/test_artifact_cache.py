"""The on-disk cache of compiled contracts: used when intact, ignored when not."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from wattx.settlement import artifacts


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    artifacts.load_artifact.cache_clear()
    yield tmp_path
    artifacts.load_artifact.cache_clear()


def test_compiled_once_then_read_back(cache_home: Path) -> None:
    first = artifacts.load_artifact("Registry")
    stored = artifacts._cache_file("Registry")
    assert stored.is_relative_to(cache_home)
    assert stored.exists()
    artifacts.load_artifact.cache_clear()
    assert artifacts.load_artifact("Registry") == first


def test_a_damaged_cache_file_is_recompiled(cache_home: Path) -> None:
    first = artifacts.load_artifact("Registry")
    artifacts._cache_file("Registry").write_text('{"abi": [], "bytec')
    artifacts.load_artifact.cache_clear()
    assert artifacts.load_artifact("Registry") == first


def test_any_source_edit_changes_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "contracts"
    shutil.copytree(artifacts.CONTRACTS_DIR, copy)
    monkeypatch.setattr(artifacts, "CONTRACTS_DIR", copy)
    artifacts._sources_digest.cache_clear()
    try:
        before = artifacts._sources_digest()
        imported = sorted(p for p in copy.rglob("*.vy") if p.stem not in artifacts.CONTRACT_NAMES)
        edited = imported[0] if imported else copy / "Registry.vy"
        edited.write_text(edited.read_text() + "\n# edited\n")
        artifacts._sources_digest.cache_clear()
        assert artifacts._sources_digest() != before
    finally:
        artifacts._sources_digest.cache_clear()
