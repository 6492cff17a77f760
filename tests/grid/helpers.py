"""Builders for the grid tests: orders with arrival numbers, rate tables over a tree."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count

from wattx.domain import Order, Side, Zone
from wattx.grid import GridTree
from wattx.market import ZoneRateTable
from wattx.market.rates import ZoneRate

NOW = datetime(2030, 6, 1, 10, 0, tzinfo=UTC)
_seq = count(1)


def order(owner: str, side: Side, qty_wh: int, price: int, zone: str) -> Order:
    seq = next(_seq)
    made = Order(
        id=f"g{seq}",
        owner=owner,
        side=side,
        qty_wh=qty_wh,
        limit_price=price,
        zone=zone,
        epoch_id=1,
        created_at=NOW,
    )
    made.seq = seq
    return made


def rates_for(tree: GridTree, table: ZoneRateTable) -> dict[tuple[str, str], ZoneRate]:
    """The rate of every ordered zone pair, neighbours taken from the tree's links."""
    neighbours: dict[str, set[str]] = {z: set() for z in tree.zones}
    for link in tree.links:
        neighbours[link.child].add(link.parent)
        neighbours[link.parent].add(link.child)
    zones = {z: Zone(z, z, neighbours=frozenset(neighbours[z])) for z in tree.zones}
    return {(a, b): table.rate(zones[a], zones[b]) for a in zones for b in zones}
