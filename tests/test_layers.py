"""No import runs back up a floor, and the pure core does no I/O: the contracts in
``pyproject.toml`` (``[tool.importlinter]``), checked by ``lint-imports``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_imports_keep_the_floors_of_the_house() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout
