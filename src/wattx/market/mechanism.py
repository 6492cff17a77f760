"""How a zone's market turns orders into trades."""

from __future__ import annotations

from enum import StrEnum


class Mechanism(StrEnum):
    """A zone's market mechanism.

    ``continuous``: continuous double auction, orders trade on arrival at the
    resting order's price. ``call_auction``: orders rest until gate closure,
    then trade at one uniform clearing price (pay-as-clear).
    ``pay_as_bid``: the same auction selects the same orders and quantities,
    but each match trades at the buyer's bid (translated to seller terms).
    """

    CONTINUOUS = "continuous"
    CALL_AUCTION = "call_auction"
    PAY_AS_BID = "pay_as_bid"
