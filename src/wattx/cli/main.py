"""The ``wattx`` command: one Typer app; each area registers its own commands."""

from __future__ import annotations

import gc

import typer

app = typer.Typer(
    name="wattx",
    help="wattx: a peer-to-peer electricity market for community and campus microgrids.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _collect_as_a_service() -> None:
    # Every command imports a good part of the service before it does anything: collected
    # every 700 allocations, what those imports build was walked again and again. Each
    # command collects at the thresholds a listening service uses (``wattx up`` and
    # ``wattx demo`` still start at their own, ``wattx.cli.heap.start_up_collections``).
    from wattx.cli.heap import SERVING_THRESHOLDS

    gc.set_threshold(*SERVING_THRESHOLDS)


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
