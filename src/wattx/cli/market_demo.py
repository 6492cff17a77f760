"""``wattx demo-market``: a scripted community trading through both mechanisms.

Two zones of one microgrid: ``north`` runs a continuous double auction,
``south`` a call auction cleared at gate closure. Prosumers offer solar and
battery energy, consumers bid; the command prints the continuous book, the
trades as they happen, and the auction's clearing at gate closure.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from wattx.domain import Order, OrderKind, Side, Trade, Zone
from wattx.units import format_kwh, format_money

if TYPE_CHECKING:
    from wattx.market import BookDepth

DEMO_START = datetime(2030, 6, 1, 9, 0, tzinfo=UTC)

ZONES = {
    "north": Zone("north", "North feeder", position_km=0, neighbours=frozenset({"south"})),
    "south": Zone("south", "South feeder", position_km=1),
}

# (owner, side, kWh in Wh, limit price per kWh, zone, kind)
CONTINUOUS_SCRIPT: list[tuple[str, Side, int, int, str, OrderKind]] = [
    ("alice", Side.SELL, 4_000, 110_000, "north", OrderKind.LIMIT),
    ("bob", Side.SELL, 2_500, 125_000, "north", OrderKind.LIMIT),
    ("carol", Side.SELL, 3_000, 105_000, "north", OrderKind.LIMIT),
    ("dave", Side.BUY, 1_500, 100_000, "north", OrderKind.LIMIT),
    ("erin", Side.BUY, 2_000, 150_000, "north", OrderKind.LIMIT),
    ("frank", Side.BUY, 3_000, 140_000, "north", OrderKind.MARKET_IOC),
    ("gina", Side.BUY, 1_000, 135_000, "north", OrderKind.LIMIT),
]
AUCTION_SCRIPT: list[tuple[str, Side, int, int, str, OrderKind]] = [
    ("hank", Side.SELL, 3_000, 95_000, "south", OrderKind.LIMIT),
    ("ivy", Side.SELL, 2_000, 120_000, "south", OrderKind.LIMIT),
    ("jack", Side.SELL, 1_500, 140_000, "south", OrderKind.LIMIT),
    ("kate", Side.BUY, 2_000, 160_000, "south", OrderKind.LIMIT),
    ("leo", Side.BUY, 2_500, 135_000, "south", OrderKind.LIMIT),
    ("mia", Side.BUY, 1_000, 110_000, "south", OrderKind.LIMIT),
]


def register(app: typer.Typer) -> None:
    """Add ``demo-market`` to the ``wattx`` command."""
    app.command("demo-market")(demo_market)


def demo_market() -> None:
    """Run a scripted community through a continuous book and a call auction."""
    # Imported here: the engine brings numpy and the solver (a tenth of a second), which
    # every other ``wattx`` command would otherwise load at start.
    from wattx.market import MarketConfig, MarketEngine, Mechanism

    console = Console()
    config = MarketConfig(zones=ZONES, mechanisms={"south": Mechanism.CALL_AUCTION})
    ids = count(1)
    engine = MarketEngine(config, id_factory=lambda: f"T{next(ids):04d}")
    now = DEMO_START
    epoch_id = config.schedule.first_open_epoch(now)
    epoch = config.schedule.epoch(epoch_id)
    console.print(
        f"[bold]wattx market demo[/bold] — epoch {epoch_id} delivers "
        f"{epoch.start:%Y-%m-%d %H:%M}-{epoch.end:%H:%M} UTC, "
        f"gate closes {epoch.gate_closure:%H:%M}"
    )
    console.print("north: continuous double auction · south: call auction at gate closure\n")

    continuous_trades: list[Trade] = []
    for n, row in enumerate(CONTINUOUS_SCRIPT, start=1):
        now += timedelta(seconds=30)
        result = engine.submit(_order(f"N{n}", row, epoch_id, now), now)
        continuous_trades.extend(result.trades)
    console.print(_depth_table(engine.depth("north", epoch_id)))
    console.print(_trade_table("Continuous trades (north)", continuous_trades))

    for n, row in enumerate(AUCTION_SCRIPT, start=1):
        now += timedelta(seconds=30)
        engine.submit(_order(f"S{n}", row, epoch_id, now), now)
    console.print(_depth_table(engine.depth("south", epoch_id)))

    closure = engine.close_gate(epoch_id, epoch.gate_closure)
    price = closure.clearing_prices.get("south")
    console.print(
        f"\nGate closure: south clears at "
        f"{'no price (no cross)' if price is None else format_money(price) + ' per kWh'}"
    )
    console.print(_trade_table("Call-auction trades (south)", closure.trades))
    console.print(
        f"{len(closure.expired)} order(s) expired unfilled: "
        + ", ".join(f"{o.owner} {format_kwh(o.cancelled_wh)}" for o in closure.expired)
    )


def _order(
    order_id: str, row: tuple[str, Side, int, int, str, OrderKind], epoch_id: int, now: datetime
) -> Order:
    owner, side, qty_wh, price, zone, kind = row
    return Order(
        id=order_id,
        owner=owner,
        side=side,
        qty_wh=qty_wh,
        limit_price=price,
        zone=zone,
        epoch_id=epoch_id,
        kind=kind,
        created_at=now,
    )


def _depth_table(depth: BookDepth) -> Table:
    table = Table(title=f"Book depth: {depth.zone}, epoch {depth.epoch_id}")
    for column in ("bids", "bid kWh", "bid price", "ask price", "ask kWh", "asks"):
        table.add_column(column, justify="right")
    for i in range(max(len(depth.bids), len(depth.asks))):
        bid = depth.bids[i] if i < len(depth.bids) else None
        ask = depth.asks[i] if i < len(depth.asks) else None
        table.add_row(
            str(bid.orders) if bid else "",
            _kwh(bid.qty_wh) if bid else "",
            format_money(bid.price) if bid else "",
            format_money(ask.price) if ask else "",
            _kwh(ask.qty_wh) if ask else "",
            str(ask.orders) if ask else "",
        )
    return table


def _trade_table(title: str, trades: Iterable[Trade]) -> Table:
    table = Table(title=title)
    for column in ("trade", "seller", "buyer", "sold kWh", "got kWh", "price", "pays", "gets"):
        table.add_column(
            column, justify="left" if column in ("trade", "seller", "buyer") else "right"
        )
    for trade in trades:
        table.add_row(
            trade.id,
            trade.seller,
            trade.buyer,
            _kwh(trade.qty_wh),
            _kwh(trade.delivered_wh),
            format_money(trade.price),
            format_money(trade.buyer_pays),
            format_money(trade.seller_receives),
        )
    table.caption = (
        "prices per kWh; the buyer pays value + wheeling + fee, the seller gets value - fee"
    )
    return table


def _kwh(qty_wh: int) -> str:
    return format_kwh(qty_wh).removesuffix(" kWh")
