from __future__ import annotations

import typer
from typer.testing import CliRunner

from wattx.cli import market_demo


def test_demo_market_prints_book_trades_and_clearing() -> None:
    app = typer.Typer()
    market_demo.register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps Typer from collapsing to a single one
        """Nothing."""

    result = CliRunner().invoke(app, ["demo-market"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "Book depth: north" in result.output
    assert "Continuous trades (north)" in result.output
    assert "Gate closure: south clears at 0.124325 per kWh" in result.output
    assert "T0007" in result.output
    assert "expired unfilled" in result.output
