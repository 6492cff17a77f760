"""The README's tour names every package of ``src/wattx`` and every area of ``services``,
and nothing that is not there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "wattx"


def _tour() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Tour", 1)[1]
    return section.split("```", 2)[1]


def _packages(folder: Path) -> set[str]:
    return {p.parent.name for p in folder.glob("*/__init__.py")}


def test_the_tour_names_every_package() -> None:
    named = set(re.findall(r"^  ([a-z_]+)/", _tour(), flags=re.MULTILINE))
    assert named == _packages(SOURCE)


def test_the_tour_names_every_area_of_the_services() -> None:
    services = _tour().split("  services/", 1)[1].split("\n  api/", 1)[0]
    named = set(re.findall(r"\b([a-z_]+)/ \(", services))
    assert named == _packages(SOURCE / "services")
