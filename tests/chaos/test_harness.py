"""The chaos suite's own pieces that need no process: its plan, its answer keys, and
the fault kinds docs/operations.md lists (not marked ``chaos``)."""

from __future__ import annotations

import re
from pathlib import Path

from .harness import chaos

DOC = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _documented_kinds() -> dict[str, set[str]]:
    text = DOC.read_text()
    section = text[text.index("## Chaos suite") : text.index("### Long run")]
    kinds: dict[str, set[str]] = {}
    for line in section.splitlines():
        found = re.match(r"\| `(\w+)` \|.*\| (both|sqlite|postgres) \|$", line)
        if found:
            name, where = found.groups()
            kinds[name] = {"sqlite", "postgres"} if where == "both" else {where}
    return kinds


def test_the_documented_fault_kinds_are_the_suites() -> None:
    suite: dict[str, set[str]] = {}
    for backend, kinds in chaos.KINDS.items():
        for kind in kinds:
            suite.setdefault(kind, set()).add(backend)
    assert _documented_kinds() == suite


def test_the_status_of_an_answer_key() -> None:
    assert chaos._status("503 storage_unavailable") == "503"
    assert chaos._status("reading 500 internal_error") == "500"
    assert chaos._status("2xx") == "2xx"
    assert chaos._status("no_response") == "no_response"


def _planned(tmp_path: Path, **config: object) -> tuple[list[str], list[str]]:
    run = chaos.Chaos(chaos.ChaosConfig(backend="sqlite", runs=10, seed=3, **config), tmp_path)
    run.hook_supported = True
    run.disk_error = "mounting a size-limited tmpfs needs root"
    return run.plan(), run.report.notes


def test_a_disk_that_cannot_be_mounted_leaves_disk_full_out_of_the_default_plan(
    tmp_path: Path,
) -> None:
    plan, notes = _planned(tmp_path)
    assert "disk_full" not in plan
    assert set(plan) == set(chaos.KINDS["sqlite"]) - {"disk_full"}
    assert any("disk_full left out" in note and "needs root" in note for note in notes)


def test_disk_full_asked_for_by_name_stays_in_the_plan(tmp_path: Path) -> None:
    # The fault cycle then reports it as skipped, and the chaos tests fail on a skip.
    plan, _ = _planned(tmp_path, kinds=("disk_full", "kill9"))
    assert sorted(set(plan)) == ["disk_full", "kill9"]


def test_the_report_names_its_number_of_clients(tmp_path: Path) -> None:
    run = chaos.Chaos(chaos.ChaosConfig(backend="postgres", traders=24), tmp_path)
    assert run.report.clients == 24
    assert "24 clients" in chaos.table([run.report])
