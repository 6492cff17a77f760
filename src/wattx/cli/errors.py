"""How a command reports a user's mistake: one line on standard error and a non-zero exit."""

from __future__ import annotations

from typing import NoReturn

import typer


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``wattx: error: message`` on standard error and exit with ``code``."""
    typer.echo(f"wattx: error: {message}", err=True)
    raise typer.Exit(code)
