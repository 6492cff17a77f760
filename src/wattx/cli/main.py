"""The ``wattx`` command: one Typer app; each area registers its own commands."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="wattx",
    help="wattx: a peer-to-peer electricity market for community and campus microgrids.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _register_commands() -> None:
    # Imported here so that each area's module stays the one place its commands live.
    from wattx.cli import (
        chain,
        delivery_demo,
        device,
        market_demo,
        meter,
        node,
        service,
        simulate,
    )

    for area in (service, market_demo, delivery_demo, chain, simulate, meter, node, device):
        area.register(app)


_register_commands()

if __name__ == "__main__":
    app()
