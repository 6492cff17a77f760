"""Typed events: what happened, to whom it may be shown, and its wire form."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final


class EventType(StrEnum):
    ORDER_CREATED = "order.created"
    ORDER_CANCELLED = "order.cancelled"
    ORDER_EXPIRED = "order.expired"
    TRADE_EXECUTED = "trade.executed"
    BOOK_UPDATED = "book.updated"
    EPOCH_CLEARED = "epoch.cleared"
    EPOCH_SETTLED = "epoch.settled"
    READING_ACCEPTED = "reading.accepted"
    READING_REJECTED = "reading.rejected"
    READING_REVIEWED = "reading.reviewed"
    TOKENS_MINTED = "tokens.minted"
    DEVICE_STATE = "device.state"
    DEVICE_ALERT = "device.alert"
    DELIVERY_STATE = "delivery.state"
    NODE_HEARTBEAT = "node.heartbeat"
    NODE_STATUS = "node.status"
    NODE_EVENT = "node.event"
    PROPOSAL_UPDATED = "proposal.updated"
    MARKET_PAUSED = "market.paused"
    MARKET_RESUMED = "market.resumed"


# Fields Final rather than the class frozen: the type checker refuses any assignment, and
# building one costs what a plain dataclass costs (a frozen one sets each field through
# object.__setattr__: docs/operations.md, "Records built per order").
@dataclass(slots=True)
class Event:
    """One event. ``audience`` lists the user ids that may see it; ``None`` means everyone.

    Operators and auditors see every event whatever its audience.
    """

    type: Final[EventType]
    data: Final[dict[str, Any]]
    audience: Final[frozenset[str] | None] = None
    at: Final[datetime] = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> str:
        return json.dumps(
            {
                "type": self.type.value,
                "data": self.data,
                "audience": sorted(self.audience) if self.audience is not None else None,
                "at": self.at.isoformat(),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        raw = json.loads(text)
        audience = raw.get("audience")
        return cls(
            type=EventType(raw["type"]),
            data=raw["data"],
            audience=frozenset(audience) if audience is not None else None,
            at=datetime.fromisoformat(raw["at"]),
        )

    def visible_to(self, user_id: str, *, sees_everything: bool) -> bool:
        return sees_everything or self.audience is None or user_id in self.audience
