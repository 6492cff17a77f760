"""The grid under a market: the tree of zones and its link capacities.

Pure core, no I/O, no market dependency: :mod:`wattx.grid.model` holds the
tree and its validation. The coupled call auction that clears over it is
:mod:`wattx.market.coupling`.
"""

from wattx.grid.model import (
    Direction,
    GridLink,
    GridTopologyError,
    GridTree,
    NegativeCapacityError,
    UnknownGridZoneError,
)

__all__ = [
    "Direction",
    "GridLink",
    "GridTopologyError",
    "GridTree",
    "NegativeCapacityError",
    "UnknownGridZoneError",
]
