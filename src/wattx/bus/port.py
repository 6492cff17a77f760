"""The bus port: typed events to every subscriber, and named channels for raw messages."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from wattx.bus.events import Event


class EventBus(Protocol):
    async def publish(self, event: Event) -> None:
        """Send an event to every current subscriber (at most once, no persistence)."""

    def subscribe(self) -> AsyncIterator[Event]:
        """Events published from now on, in publication order per publisher."""

    async def publish_to(self, channel: str, message: str) -> None:
        """Send ``message`` on a named channel (e.g. ``nodes:{id}:commands``)."""

    def subscribe_to(self, pattern: str) -> AsyncIterator[tuple[str, str]]:
        """(channel, message) of channels matching a glob ``pattern``, from now on."""

    def may_hear(self, channel: str) -> bool:
        """Whether a message on ``channel`` could reach a subscriber now. False only when
        the bus knows that none could (so a publisher may skip encoding the message); a
        bus shared between processes cannot know, and always says True."""

    async def close(self) -> None: ...
