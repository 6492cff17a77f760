"""The event bus port and its adapters (in-process default, Redis pub/sub)."""

from wattx.bus.events import Event, EventType
from wattx.bus.memory import InProcessBus
from wattx.bus.port import EventBus

__all__ = ["Event", "EventBus", "EventType", "InProcessBus"]
