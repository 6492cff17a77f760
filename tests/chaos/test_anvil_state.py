"""The chaos suite's own harness: a chain node whose state file a kill tore comes back
from the copy taken just before the kill (not marked ``chaos``: no process runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .harness import chaos


def test_a_torn_anvil_state_is_replaced_by_the_copy_taken_before_the_kill(
    tmp_path: Path,
) -> None:
    anvil = chaos.Anvil(tmp_path)
    state = {"block": {"number": "0x2a"}, "accounts": {}}
    anvil.state.write_text(json.dumps(state))
    anvil.stop()  # no process yet: only the copy is taken
    torn = json.dumps({"block": {"number": "0x2b"}, "accounts": {}})[:20]
    anvil.state.write_text(torn)
    anvil.mend_state()
    assert json.loads(anvil.state.read_text()) == state
    assert anvil.repairs == 1
    # A whole file is left as it is.
    anvil.state.write_text(json.dumps({"block": {"number": "0x2c"}}))
    anvil.mend_state()
    assert json.loads(anvil.state.read_text()) == {"block": {"number": "0x2c"}}
    assert anvil.repairs == 1


def test_a_copy_torn_while_anvil_rewrites_its_file_keeps_the_last_good_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    anvil = chaos.Anvil(tmp_path)
    good = {"block": {"number": "0x2a"}, "accounts": {}}
    anvil.state.write_text(json.dumps(good))
    anvil.stop()
    # The file parses, but anvil rewrites it while the copy is taken: the copy is torn.
    anvil.state.write_text(json.dumps({"block": {"number": "0x2b"}, "accounts": {}}))

    def copy_during_a_rewrite(source: Path, target: Path) -> None:
        Path(target).write_text(Path(source).read_text()[:15])

    monkeypatch.setattr(chaos.shutil, "copyfile", copy_during_a_rewrite)
    anvil.stop()
    monkeypatch.undo()
    assert json.loads(anvil.good_state.read_text()) == good
    anvil.state.write_text("")  # the kill tore the live file too
    anvil.mend_state()
    assert json.loads(anvil.state.read_text()) == good
