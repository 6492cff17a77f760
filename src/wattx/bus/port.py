"""The bus port: publish events, subscribe to the stream of all of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from wattx.bus.events import Event


class EventBus(Protocol):
    async def publish(self, event: Event) -> None:
        """Send an event to every current subscriber (at most once, no persistence)."""

    def subscribe(self) -> AsyncIterator[Event]:
        """Events published from now on, in publication order per publisher."""

    async def close(self) -> None: ...
