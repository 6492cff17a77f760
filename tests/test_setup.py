"""Set-up leaves a clean work tree: the npm lock is installed as it is, never rewritten."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_lock_records_every_platforms_optional_packages() -> None:
    # A lock written on one platform that lacks another platform's optional
    # package is "out of sync" for npm ci, and npm install would rewrite it.
    lock = json.loads((ROOT / "package-lock.json").read_text())
    packages = lock["packages"]
    missing = [
        f"{path} -> {name}"
        for path, package in packages.items()
        for name in package.get("optionalDependencies", {})
        if f"node_modules/{name}" not in packages
    ]
    assert missing == []
    manifest = json.loads((ROOT / "package.json").read_text())
    assert packages[""]["devDependencies"] == manifest["devDependencies"]


def test_setup_installs_with_npm_ci() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^node_modules/\.installed:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None
    commands = recipe.group(1)
    assert "npm ci" in commands
    assert "npm install" not in commands
