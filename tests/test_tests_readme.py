"""tests/README.md states how the suite runs and which shared fixtures exist: both hold."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "tests" / "README.md").read_text()


def test_make_test_runs_the_suite_with_the_documented_workers_and_sharing() -> None:
    makefile = (ROOT / "Makefile").read_text()
    default = re.search(r"^PYTEST_WORKERS \?= (\d+)$", makefile, re.MULTILINE)
    assert default is not None
    recipe = re.search(r"^pytest:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None
    assert "-n $(PYTEST_WORKERS) --dist loadscope" in recipe.group(1)
    assert f"`pytest -n $(PYTEST_WORKERS)`, {default.group(1)} by default" in README
    assert "(`--dist loadscope`)" in README


def test_the_shared_pieces_it_names_exist() -> None:
    shared = README.split("Shared pieces worth reusing:", 1)[1]
    named = re.findall(r"`([a-z_]+(?:\.[a-z_]+)?)` \(([^)]*)\)", shared.replace("\n", " "))
    modules = {module for module, _ in named}
    assert {"service.conftest", "service.client", "service.live", "settlement.conftest"} <= modules
    for module, names in named:
        if "." not in module or module.startswith("wattx"):
            continue
        loaded = importlib.import_module(module)
        for name in re.findall(r"`(\w+)`", names):
            assert hasattr(loaded, name), f"{module}.{name}"
