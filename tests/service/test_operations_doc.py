"""docs/operations.md's configuration table lists exactly the settings of
``wattx.config.Settings``, each with its default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from wattx.config import Settings

DOC = Path(__file__).parents[2] / "docs" / "operations.md"


def documented_settings() -> dict[str, str]:
    """Setting name → its documented default, from the table under "## Configuration"."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    found: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        names = re.findall(r"`([a-z_0-9]+)`", cells[0])
        defaults = [d.strip() for d in cells[1].split(",")]
        assert len(defaults) == len(names), f"one default per setting: {line}"
        for name, default in zip(names, defaults, strict=True):
            assert name not in found, f"{name} is listed twice"
            found[name] = default
    return found


def _matches(documented: str, default: Any) -> bool:
    if default is None or hasattr(default, "get_secret_value"):
        return documented == "unset"
    if default == "":
        return documented in {"unset", "empty"}
    if isinstance(default, bool):
        return documented == str(default).lower()
    if isinstance(default, int | float):
        return type(default)(documented.replace(" ", "")) == default
    return documented == f"`{default}`"


def test_the_configuration_table_is_the_settings() -> None:
    documented = documented_settings()
    defined = Settings.model_fields
    assert set(documented) == set(defined), {
        "undocumented": sorted(set(defined) - set(documented)),
        "not a setting": sorted(set(documented) - set(defined)),
    }
    for name, field in defined.items():
        assert _matches(documented[name], field.default), (name, documented[name], field.default)
