"""The grid under a market: the tree of zones, link capacities, coupled clearing.

Pure core: no I/O. :mod:`wattx.grid.model` holds the tree and its validation,
:mod:`wattx.grid.coupling` the coupled call auction (a linear program).
"""

from wattx.grid.coupling import (
    CoupledClearing,
    CoupledMatch,
    LinkReport,
    can_bind,
    run_coupled_auction,
    welfare,
)
from wattx.grid.model import (
    Direction,
    GridLink,
    GridTopologyError,
    GridTree,
    NegativeCapacityError,
    UnknownGridZoneError,
)

__all__ = [
    "CoupledClearing",
    "CoupledMatch",
    "Direction",
    "GridLink",
    "GridTopologyError",
    "GridTree",
    "LinkReport",
    "NegativeCapacityError",
    "UnknownGridZoneError",
    "can_bind",
    "run_coupled_auction",
    "welfare",
]
