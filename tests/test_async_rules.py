"""The rule of ``docs/architecture.md``: a timeout around an await is
``asyncio.timeout``, never ``asyncio.wait_for`` (on Python 3.11 ``wait_for`` drops a
cancellation that arrives with the result, and a loop that goes on never stops)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "src" / "wattx"


def _uses_wait_for(tree: ast.AST) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "wait_for"
            and isinstance(node.value, ast.Name)
            and node.value.id == "asyncio"
        ):
            lines.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module == "asyncio":
            lines.extend(node.lineno for alias in node.names if alias.name == "wait_for")
    return lines


def test_the_rule_is_written_where_it_is_checked() -> None:
    rules = (ROOT / "docs" / "architecture.md").read_text()
    assert "`asyncio.timeout`" in rules
    assert "`asyncio.wait_for`" in rules


def test_the_check_finds_both_spellings() -> None:
    found = _uses_wait_for(
        ast.parse("import asyncio\nfrom asyncio import wait_for\nasyncio.wait_for(f(), 1)\n")
    )
    assert found == [2, 3]


def test_no_source_waits_with_asyncio_wait_for() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted(SOURCES.rglob("*.py"))
        for line in _uses_wait_for(ast.parse(path.read_text(), str(path)))
    ]
    assert offenders == [], offenders
