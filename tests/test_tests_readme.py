"""tests/README.md states how the suite runs and which shared fixtures exist: both hold."""

from __future__ import annotations

import gc
import importlib
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "tests" / "README.md").read_text()


def test_make_test_runs_the_suite_with_the_documented_workers_and_sharing() -> None:
    makefile = (ROOT / "Makefile").read_text()
    default = re.search(r"^PYTEST_WORKERS \?= (\d+)$", makefile, re.MULTILINE)
    assert default is not None
    recipe = re.search(r"^pytest:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None
    assert "-n $(PYTEST_WORKERS) --dist loadscope --no-loadscope-reorder" in recipe.group(1)
    assert f"`pytest -n $(PYTEST_WORKERS)`, {default.group(1)} by default" in README
    assert "(`--dist loadscope`)" in README
    assert "(`--no-loadscope-reorder`)" in README


@dataclass
class _Item:
    """What the ordering hook reads of a collected test."""

    nodeid: str
    slow: bool = False

    def get_closest_marker(self, name: str) -> object | None:
        return object() if name == "slow" and self.slow else None


def test_modules_with_a_slow_test_come_first_then_the_largest() -> None:
    spec = importlib.util.spec_from_file_location("suite_conftest", ROOT / "tests" / "conftest.py")
    assert spec is not None
    assert spec.loader is not None
    suite_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite_conftest)
    items = [
        _Item("a/test_small.py::test_one"),
        _Item("b/test_large.py::test_one"),
        _Item("b/test_large.py::test_two"),
        _Item("b/test_large.py::test_three"),
        _Item("c/test_classes.py::TestThing::test_one"),
        _Item("c/test_classes.py::TestThing::test_two"),
        _Item("d/test_long.py::test_quick"),
        _Item("d/test_long.py::test_long", slow=True),
        _Item("e/test_also_long.py::test_long", slow=True),
    ]
    suite_conftest.pytest_collection_modifyitems(items)
    assert [item.nodeid for item in items] == [
        "d/test_long.py::test_quick",
        "d/test_long.py::test_long",
        "e/test_also_long.py::test_long",
        "b/test_large.py::test_one",
        "b/test_large.py::test_two",
        "b/test_large.py::test_three",
        "c/test_classes.py::TestThing::test_one",
        "c/test_classes.py::TestThing::test_two",
        "a/test_small.py::test_one",
    ]


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


def test_installed_packages_are_imported_from_their_bytecode() -> None:
    # Plugins are loaded by name (pyproject.toml): with pytest's autoload, every module of a
    # package that declares a plugin had its asserts rewritten whenever it was imported.
    import boa
    import hypothesis
    import schemathesis

    assert "plugins are loaded by name" in README
    for package in (boa, hypothesis, schemathesis):
        loader = package.__spec__.loader if package.__spec__ else None
        assert type(loader).__name__ != "AssertionRewritingHook", package.__name__
    from _pytest.assertion.rewrite import AssertionRewritingHook

    # The suite's own test modules still have theirs rewritten.
    this = __spec__.loader if __spec__ else None
    assert isinstance(this, AssertionRewritingHook)


def test_the_suite_collects_garbage_at_a_serving_services_thresholds() -> None:
    from wattx.cli.heap import SERVING_THRESHOLDS

    assert "thresholds a listening service uses" in " ".join(README.split())
    assert gc.get_threshold() == SERVING_THRESHOLDS


async def test_engines_of_one_process_share_their_compiled_statements(tmp_path: Path) -> None:
    first = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'one.sqlite3'}")
    second = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'two.sqlite3'}")
    try:
        for engine in (first, second, second):
            async with engine.connect() as connection:
                await connection.execute(select(literal(1)))
        assert second.sync_engine.dialect is first.sync_engine.dialect
        assert second.sync_engine._compiled_cache is first.sync_engine._compiled_cache
    finally:
        await first.dispose()
        await second.dispose()
