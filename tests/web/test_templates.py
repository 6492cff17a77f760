"""The templates stay within what a strict Content-Security-Policy allows."""

from __future__ import annotations

import re
from pathlib import Path

import wattx.web


def test_templates_have_no_inline_script_or_style() -> None:
    """What a strict Content-Security-Policy refuses: inline scripts, handlers, styles."""
    templates = sorted((Path(wattx.web.__file__).parent / "templates").glob("*.html"))
    assert templates
    for template in templates:
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template.name
        assert not re.search(r"<style\b|\sstyle=|\son[a-z]+=|\shx-on", text), template.name
