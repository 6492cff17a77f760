from __future__ import annotations

import typer
from typer.testing import CliRunner

from wattx.cli import delivery_demo


def test_demo_delivery_shows_a_delivered_and_an_under_delivered_trade() -> None:
    app = typer.Typer()
    delivery_demo.register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps Typer from collapsing to a single one
        """Nothing."""

    result = CliRunner().invoke(app, ["demo-delivery"], env={"COLUMNS": "140"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "T1: leaf delivered_wh = 2000" in out
    # Carol's inverter trips after 600 of 1,500 Wh: 900 Wh undelivered, refund
    # 0.21 * 900 / 1500 = 0.126, imbalance 900 Wh at 0.30 per kWh = 0.27.
    assert "T2: leaf delivered_wh = 600" in out
    assert "0.126000" in out
    assert "0.270000" in out
    assert "Conserved: energy 0, credit 0" in out
