"""The market core: continuous books, call auctions, zone rates, reference price.

Pure Python, no I/O, integers only (Wh; micro-units per kWh). The service
talks to :class:`MarketEngine`; the rules are written down in ``docs/market.md``.
"""

from wattx.market.auction import AuctionClearing, clear_call_auction, clear_call_auction_arrays
from wattx.market.book import ContinuousBook
from wattx.market.config import BoundMargins, MarketConfig
from wattx.market.depth import BookDepth, DepthLevel
from wattx.market.engine import GateClosure, MarketEngine, SubmitResult
from wattx.market.errors import (
    DuplicateClientOrderIdError,
    DuplicateOrderError,
    GateClosedError,
    GateNotClosedError,
    InvalidOrderStateError,
    InvalidQuantityError,
    NotOrderOwnerError,
    OrderKindNotSupportedError,
    OrderNotFoundError,
    OrderNotOpenError,
    PriceOutOfBoundsError,
    UnknownZoneError,
)
from wattx.market.execution import escrow_required
from wattx.market.mechanism import Mechanism
from wattx.market.rates import ZoneRate, ZoneRateTable
from wattx.market.reference_price import (
    ReferencePriceInputs,
    ReferencePriceWeights,
    reference_factors,
    reference_price,
)

__all__ = [
    "AuctionClearing",
    "BookDepth",
    "BoundMargins",
    "ContinuousBook",
    "DepthLevel",
    "DuplicateClientOrderIdError",
    "DuplicateOrderError",
    "GateClosedError",
    "GateClosure",
    "GateNotClosedError",
    "InvalidOrderStateError",
    "InvalidQuantityError",
    "MarketConfig",
    "MarketEngine",
    "Mechanism",
    "NotOrderOwnerError",
    "OrderKindNotSupportedError",
    "OrderNotFoundError",
    "OrderNotOpenError",
    "PriceOutOfBoundsError",
    "ReferencePriceInputs",
    "ReferencePriceWeights",
    "SubmitResult",
    "UnknownZoneError",
    "ZoneRate",
    "ZoneRateTable",
    "clear_call_auction",
    "clear_call_auction_arrays",
    "escrow_required",
    "reference_factors",
    "reference_price",
]
