"""Headless Chromium for the dashboard's browser tests, with axe-core from npm.

Debian's ``chromium`` (``make setup`` installs it when missing); Playwright's own
browser download is never used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from playwright.async_api import Page

from wattx.web.assets import node_modules

CHROMIUM = os.environ.get("WATTX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


async def accessibility_violations(page: Page) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations under the WCAG 2.2 AA tags."""
    axe = node_modules() / "axe-core" / "axe.min.js"
    await page.add_script_tag(path=str(axe))
    found: list[dict[str, Any]] = await page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: "tag", values: tags}});
            return result.violations
                .filter(v => v.impact === "serious" || v.impact === "critical")
                .map(v => ({id: v.id, impact: v.impact, help: v.help,
                            targets: v.nodes.map(n => n.target.join(" "))}));
        }""",
        WCAG_22_AA,
    )
    return found


async def checked(page: Page, shots: Path, name: str) -> None:
    """Screenshot the page as an artifact, then assert axe finds nothing serious."""
    await page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    violations = await accessibility_violations(page)
    assert violations == [], (name, violations)
